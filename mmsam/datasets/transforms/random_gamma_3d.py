"""nnU-Net 2.5.1's gamma augmentation (plain and on the inverted image) for volumes."""
from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform, with_probability
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomGamma3D(BatchgeneratorsV2Transform):
    """Apply a gamma curve to each channel's [min, max] range with probability ``prob``.

    Calls batchgeneratorsv2's ``GammaTransform`` inside its ``RandomTransform``, as nnU-Net
    2.5.1 (twice: ``p_invert_image=1`` with probability 0.1, then 0 with 0.3):
    ``gamma=BGContrast((0.7, 1.5))``, ``synchronize_channels=False``, ``p_per_channel=1``,
    ``p_retain_stats=1``. Per channel: optionally negate, x -> ((x - min) / max(range, 1e-7))
    ** gamma * range + min, optionally restore the mean and (unbiased) std, negate back.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.3.
        gamma_range (tuple[float]): range of gamma, drawn by ``BGContrast``. Default:
            (0.7, 1.5).
        invert_image (bool): apply the curve to the negated image. Default: False.
        retain_stats (bool): keep each channel's mean and standard deviation. Default: True.
    """

    def __init__(self, prob=0.3, gamma_range=(0.7, 1.5), invert_image=False, retain_stats=True):
        from batchgeneratorsv2.transforms.intensity.contrast import BGContrast
        from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
        self.prob = check_prob('prob', prob)
        self.gamma_range = check_range('gamma_range', gamma_range, minimum=0, strict=True)
        self.invert_image = bool(invert_image)
        self.retain_stats = bool(retain_stats)
        self.bg_transform = with_probability(GammaTransform(
            gamma=BGContrast(self.gamma_range), p_invert_image=float(self.invert_image),
            synchronize_channels=False, p_per_channel=1,
            p_retain_stats=float(self.retain_stats)), self.prob)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, gamma_range={self.gamma_range}, '
                f'invert_image={self.invert_image}, retain_stats={self.retain_stats})')

"""nnU-Net 2.5.1's contrast augmentation for volumes (batchgeneratorsv2)."""
from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform, with_probability
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomContrast3D(BatchgeneratorsV2Transform):
    """Scale each channel's deviation from its mean with probability ``prob``.

    Calls batchgeneratorsv2's ``ContrastTransform`` inside its ``RandomTransform``, as nnU-Net
    2.5.1: ``contrast_range=BGContrast((0.75, 1.25))``, ``preserve_range=True``,
    ``synchronize_channels=False``, ``p_per_channel=1``, ``apply_probability=0.15``. Per
    channel x -> (x - mean) * f + mean, then, with ``preserve_range``, clipped to the
    channel's original [min, max].

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.15.
        contrast_range (tuple[float]): range of the factor, drawn by ``BGContrast``.
            Default: (0.75, 1.25).
        preserve_range (bool): clip to the original range. Default: True.
    """

    def __init__(self, prob=0.15, contrast_range=(0.75, 1.25), preserve_range=True):
        from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
        self.prob = check_prob('prob', prob)
        self.contrast_range = check_range('contrast_range', contrast_range, minimum=0)
        self.preserve_range = bool(preserve_range)
        self.bg_transform = with_probability(ContrastTransform(
            contrast_range=BGContrast(self.contrast_range), preserve_range=self.preserve_range,
            synchronize_channels=False, p_per_channel=1), self.prob)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'contrast_range={self.contrast_range}, preserve_range={self.preserve_range})')

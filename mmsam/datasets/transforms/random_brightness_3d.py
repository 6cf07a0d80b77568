"""nnU-Net 2.5.1's multiplicative brightness augmentation for volumes (batchgeneratorsv2)."""
from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform, with_probability
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomBrightness3D(BatchgeneratorsV2Transform):
    """Multiply each channel by its own factor with probability ``prob``.

    Calls batchgeneratorsv2's ``MultiplicativeBrightnessTransform`` inside its
    ``RandomTransform``, as nnU-Net 2.5.1: ``multiplier_range=BGContrast((0.75, 1.25))`` (below
    or above 1 with equal chance: U(0.75, 1) or U(1, 1.25)), ``synchronize_channels=False``,
    ``p_per_channel=1``, ``apply_probability=0.15``.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.15.
        multiplier_range (tuple[float]): range of the factor, drawn by ``BGContrast``.
            Default: (0.75, 1.25).
    """

    def __init__(self, prob=0.15, multiplier_range=(0.75, 1.25)):
        from batchgeneratorsv2.transforms.intensity.brightness import \
            MultiplicativeBrightnessTransform
        from batchgeneratorsv2.transforms.intensity.contrast import BGContrast
        self.prob = check_prob('prob', prob)
        self.multiplier_range = check_range('multiplier_range', multiplier_range, minimum=0)
        self.bg_transform = with_probability(MultiplicativeBrightnessTransform(
            multiplier_range=BGContrast(self.multiplier_range), synchronize_channels=False,
            p_per_channel=1), self.prob)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'multiplier_range={self.multiplier_range})')

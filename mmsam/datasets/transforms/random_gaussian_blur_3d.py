"""nnU-Net 2.5.1's Gaussian blur augmentation for volumes (batchgeneratorsv2)."""
from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform, with_probability
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomGaussianBlur3D(BatchgeneratorsV2Transform):
    """Blur with probability ``prob``: each channel with ``prob_per_channel``, a sigma per axis.

    Calls batchgeneratorsv2's ``GaussianBlurTransform`` inside its ``RandomTransform``, as
    nnU-Net 2.5.1: ``blur_sigma=(0.5, 1.)``, ``synchronize_channels=False``,
    ``synchronize_axes=False`` (each of D, H, W draws its own sigma U(``sigma_range``) voxels,
    depth included), ``p_per_channel=0.5``, ``apply_probability=0.2``. The separable kernel
    is truncated at 4 sigma (odd size) with reflecting borders.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.2.
        sigma_range (tuple[float]): range of the standard deviation in voxels. Default:
            (0.5, 1.0).
        prob_per_channel (float): probability per channel, once applied. Default: 0.5.
        synchronize_axes (bool): one sigma for all axes (batchgenerators v1's rule).
            Default: False.
        benchmark (bool): let batchgeneratorsv2 time FFT against direct convolution and use
            the faster (nnU-Net sets True); the values agree up to float rounding, False keeps
            runs bit-reproducible. Default: False.
    """

    def __init__(self, prob=0.2, sigma_range=(0.5, 1.), prob_per_channel=0.5,
                 synchronize_axes=False, benchmark=False):
        from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
        self.prob = check_prob('prob', prob)
        self.sigma_range = check_range('sigma_range', sigma_range, minimum=0, strict=True)
        self.prob_per_channel = check_prob('prob_per_channel', prob_per_channel)
        self.synchronize_axes = bool(synchronize_axes)
        self.benchmark = bool(benchmark)
        self.bg_transform = with_probability(GaussianBlurTransform(
            blur_sigma=self.sigma_range, synchronize_channels=False,
            synchronize_axes=self.synchronize_axes, p_per_channel=self.prob_per_channel,
            benchmark=self.benchmark), self.prob)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, sigma_range={self.sigma_range}, '
                f'prob_per_channel={self.prob_per_channel}, '
                f'synchronize_axes={self.synchronize_axes}, benchmark={self.benchmark})')

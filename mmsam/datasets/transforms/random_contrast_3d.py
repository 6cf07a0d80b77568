"""nnU-Net's contrast augmentation for volumes."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import channels_view, like_input, sample_around_one


@TRANSFORMS.register_module()
class RandomContrast3D(BaseTransform):
    """Scale each channel's deviation from its mean with probability ``prob``.

    nnU-Net's ``ContrastAugmentationTransform(p_per_sample=0.15)``: per channel a factor f
    (:func:`sample_around_one` over ``contrast_range``), x -> (x - mean) * f + mean, then,
    with ``preserve_range``, clipping to the channel's original [min, max].

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.15.
        contrast_range (tuple[float]): range of the factor. Default: (0.75, 1.25).
        preserve_range (bool): clip to the original range. Default: True.
    """

    def __init__(self, prob=0.15, contrast_range=(0.75, 1.25), preserve_range=True):
        self.prob = check_prob('prob', prob)
        self.contrast_range = check_range('contrast_range', contrast_range, minimum=0)
        self.preserve_range = bool(preserve_range)

    @cache_randomness
    def _sample(self, num_channels):
        if np.random.rand() >= self.prob:
            return None
        return [sample_around_one(self.contrast_range) for _ in range(num_channels)]

    def transform(self, results):
        img = results['img']
        channels = channels_view(img).astype(np.float32)
        factors = self._sample(channels.shape[0])
        if factors is None:
            return results
        for c, factor in enumerate(factors):
            x = channels[c]
            mean, low, high = x.mean(dtype=np.float64), x.min(), x.max()
            x = (x - mean) * factor + mean
            channels[c] = np.clip(x, low, high) if self.preserve_range else x
        results['img'] = like_input(channels, img)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'contrast_range={self.contrast_range}, preserve_range={self.preserve_range})')

"""nnU-Net's multiplicative brightness augmentation for volumes."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import channels_view, like_input


@TRANSFORMS.register_module()
class RandomBrightness3D(BaseTransform):
    """Multiply each channel by its own factor U(``multiplier_range``) with probability ``prob``.

    nnU-Net's ``BrightnessMultiplicativeTransform((0.75, 1.25), p_per_sample=0.15)``.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.15.
        multiplier_range (tuple[float]): range of the factor. Default: (0.75, 1.25).
    """

    def __init__(self, prob=0.15, multiplier_range=(0.75, 1.25)):
        self.prob = check_prob('prob', prob)
        self.multiplier_range = check_range('multiplier_range', multiplier_range)

    @cache_randomness
    def _sample(self, num_channels):
        if np.random.rand() >= self.prob:
            return None
        return np.random.uniform(*self.multiplier_range, size=num_channels)

    def transform(self, results):
        img = results['img']
        channels = channels_view(img).astype(np.float32)
        factors = self._sample(channels.shape[0])
        if factors is None:
            return results
        channels *= factors.astype(np.float32)[:, None, None, None]
        results['img'] = like_input(channels, img)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'multiplier_range={self.multiplier_range})')

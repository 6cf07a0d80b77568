"""nnU-Net's Gaussian blur augmentation for volumes."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from scipy import ndimage

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import channels_view, like_input


@TRANSFORMS.register_module()
class RandomGaussianBlur3D(BaseTransform):
    """Blur with probability ``prob``, each channel with ``prob_per_channel`` and its own sigma.

    nnU-Net's ``GaussianBlurTransform((0.5, 1.), different_sigma_per_channel=True,
    p_per_sample=0.2, p_per_channel=0.5)``: one sigma U(``sigma_range``) voxels for all three
    axes of the channel (``scipy.ndimage.gaussian_filter``, reflecting borders).

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.2.
        sigma_range (tuple[float]): range of the standard deviation in voxels. Default:
            (0.5, 1.0).
        prob_per_channel (float): probability per channel, once applied. Default: 0.5.
    """

    def __init__(self, prob=0.2, sigma_range=(0.5, 1.), prob_per_channel=0.5):
        self.prob = check_prob('prob', prob)
        self.sigma_range = check_range('sigma_range', sigma_range, minimum=0)
        self.prob_per_channel = check_prob('prob_per_channel', prob_per_channel)

    @cache_randomness
    def _sample(self, num_channels):
        """Sigma per channel (None: not blurred), or None when skipped."""
        if np.random.rand() >= self.prob:
            return None
        return [np.random.uniform(*self.sigma_range)
                if np.random.rand() < self.prob_per_channel else None
                for _ in range(num_channels)]

    def transform(self, results):
        img = results['img']
        channels = channels_view(img).astype(np.float32)
        sigmas = self._sample(channels.shape[0])
        if sigmas is None:
            return results
        for c, sigma in enumerate(sigmas):
            if sigma is not None:
                channels[c] = ndimage.gaussian_filter(channels[c], sigma)
        results['img'] = like_input(channels, img)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, sigma_range={self.sigma_range}, '
                f'prob_per_channel={self.prob_per_channel})')

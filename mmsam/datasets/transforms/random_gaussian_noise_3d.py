"""nnU-Net's additive Gaussian noise augmentation for volumes."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import channels_view, like_input, seed_from_global_rng


@TRANSFORMS.register_module()
class RandomGaussianNoise3D(BaseTransform):
    """Add zero-mean Gaussian noise with probability ``prob`` (nnU-Net's GaussianNoiseTransform).

    The noise level is drawn once per sample from U(``std_range``). nnU-Net's argument is
    called ``noise_variance=(0, 0.1)``, but batchgenerators passes the drawn value to
    ``np.random.normal`` as the standard deviation; this transform does the same and names it
    for what it is.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.1.
        std_range (tuple[float]): range of the noise standard deviation. Default: (0, 0.1).
        prob_per_channel (float): probability per channel, once applied. Default: 1.
    """

    def __init__(self, prob=0.1, std_range=(0., 0.1), prob_per_channel=1.):
        self.prob = check_prob('prob', prob)
        self.std_range = check_range('std_range', std_range, minimum=0)
        self.prob_per_channel = check_prob('prob_per_channel', prob_per_channel)

    @cache_randomness
    def _sample(self, num_channels):
        """(std, channel mask, noise seed), or None when skipped."""
        if np.random.rand() >= self.prob:
            return None
        std = np.random.uniform(*self.std_range)
        mask = np.random.rand(num_channels) < self.prob_per_channel
        return std, mask, seed_from_global_rng()

    def transform(self, results):
        img = results['img']
        channels = channels_view(img).astype(np.float32)
        params = self._sample(channels.shape[0])
        if params is None:
            return results
        std, mask, seed = params
        rng = np.random.default_rng(seed)
        for c in np.flatnonzero(mask):
            channels[c] += np.float32(std) * rng.standard_normal(channels.shape[1:],
                                                                 dtype=np.float32)
        results['img'] = like_input(channels, img)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, std_range={self.std_range}, '
                f'prob_per_channel={self.prob_per_channel})')

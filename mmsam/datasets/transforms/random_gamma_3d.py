"""nnU-Net's gamma augmentation (plain and on the inverted image) for volumes."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import channels_view, like_input, sample_around_one


@TRANSFORMS.register_module()
class RandomGamma3D(BaseTransform):
    """Apply a gamma curve to each channel's [min, max] range with probability ``prob``.

    nnU-Net's ``GammaTransform(gamma_range, invert_image, per_channel=True, retain_stats=True)``
    (used twice: ``invert_image=True`` with p 0.1, then ``False`` with p 0.3). Per channel:
    optionally negate, x -> ((x - min) / (range + 1e-7)) ** gamma * range + min with gamma from
    :func:`sample_around_one`, optionally restore the channel's mean and std, negate back.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.3.
        gamma_range (tuple[float]): range of gamma. Default: (0.7, 1.5).
        invert_image (bool): apply the curve to the negated image. Default: False.
        retain_stats (bool): keep each channel's mean and standard deviation. Default: True.
    """

    def __init__(self, prob=0.3, gamma_range=(0.7, 1.5), invert_image=False, retain_stats=True):
        self.prob = check_prob('prob', prob)
        self.gamma_range = check_range('gamma_range', gamma_range, minimum=0, strict=True)
        self.invert_image = bool(invert_image)
        self.retain_stats = bool(retain_stats)

    @cache_randomness
    def _sample(self, num_channels):
        if np.random.rand() >= self.prob:
            return None
        return [sample_around_one(self.gamma_range) for _ in range(num_channels)]

    def transform(self, results):
        img = results['img']
        channels = channels_view(img).astype(np.float32)
        gammas = self._sample(channels.shape[0])
        if gammas is None:
            return results
        sign = -1 if self.invert_image else 1
        for c, gamma in enumerate(gammas):
            x = sign * channels[c].astype(np.float64)
            mean, std = x.mean(), x.std()
            low = x.min()
            span = x.max() - low
            x = np.power((x - low) / (span + 1e-7), gamma) * span + low
            if self.retain_stats:
                x = (x - x.mean()) / (x.std() + 1e-8) * std + mean
            channels[c] = sign * x
        results['img'] = like_input(channels, img)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, gamma_range={self.gamma_range}, '
                f'invert_image={self.invert_image}, retain_stats={self.retain_stats})')

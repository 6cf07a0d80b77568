"""nnU-Net's simulated low resolution: down-sample (nearest), then up-sample back (cubic)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from scipy import ndimage

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import channels_view, like_input


@TRANSFORMS.register_module()
class RandomLowResolution3D(BaseTransform):
    """Blur detail by a nearest down-sampling and a cubic up-sampling, in-plane by default.

    nnU-Net's ``SimulateLowResolutionTransform(zoom_range=(0.5, 1), per_channel=True,
    p_per_channel=0.5, order_downsample=0, order_upsample=3, p_per_sample=0.25,
    ignore_axes=(0,))`` (depth is left alone for anisotropic patches): per channel a zoom
    U(``zoom_range``), the ``axes`` shrunk to round(n * zoom) voxels and resized back. Resizing
    maps pixel centres as skimage's ``resize`` does (``grid_mode=True``, edge padding).

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.25.
        zoom_range (tuple[float]): range of the down-sampling factor, in (0, 1]. Default:
            (0.5, 1).
        prob_per_channel (float): probability per channel, once applied. Default: 0.5.
        axes (tuple[int]): axes of (D, H, W) to down-sample. Default: (1, 2), in-plane.
    """

    def __init__(self, prob=0.25, zoom_range=(0.5, 1.), prob_per_channel=0.5, axes=(1, 2)):
        self.prob = check_prob('prob', prob)
        self.zoom_range = check_range('zoom_range', zoom_range, minimum=0, strict=True)
        self.prob_per_channel = check_prob('prob_per_channel', prob_per_channel)
        if not set(axes) <= {0, 1, 2} or len(set(axes)) != len(axes):
            raise ValueError(f'axes must be distinct axes of (D, H, W) in 0..2, got {axes!r}')
        self.axes = tuple(int(a) for a in axes)

    @cache_randomness
    def _sample(self, num_channels):
        """Zoom per channel (None: unchanged), or None when skipped."""
        if np.random.rand() >= self.prob:
            return None
        return [np.random.uniform(*self.zoom_range)
                if np.random.rand() < self.prob_per_channel else None
                for _ in range(num_channels)]

    def transform(self, results):
        img = results['img']
        channels = channels_view(img).astype(np.float32)
        zooms = self._sample(channels.shape[0])
        if zooms is None:
            return results
        for c, zoom in enumerate(zooms):
            if zoom is None:
                continue
            if 0 in self.axes:
                channels[c] = self._down_up(channels[c], zoom, self.axes)
            else:  # slice by slice: a 2D cubic spline is 4x cheaper than a 3D one
                in_plane = tuple(a - 1 for a in self.axes)
                for z in range(channels.shape[1]):
                    channels[c, z] = self._down_up(channels[c, z], zoom, in_plane)
        results['img'] = like_input(channels, img)
        return results

    @staticmethod
    def _down_up(x, zoom, axes):
        """Resize ``axes`` of ``x`` to round(n * zoom) (nearest) and back (cubic)."""
        shape = np.array(x.shape)
        target = shape.copy()
        target[list(axes)] = np.maximum(np.round(shape[list(axes)] * zoom), 1)
        low = ndimage.zoom(x, target / shape, order=0, mode='nearest', grid_mode=True)
        return ndimage.zoom(low, shape / np.array(low.shape), order=3, mode='nearest',
                            grid_mode=True)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, zoom_range={self.zoom_range}, '
                f'prob_per_channel={self.prob_per_channel}, axes={self.axes})')

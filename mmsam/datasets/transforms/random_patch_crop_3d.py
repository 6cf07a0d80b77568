"""nnU-Net's training patch sampling: random or foreground-centred crops, zero-padded."""
import math

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob
from .volume_transform_utils import aligned_seg_fields, check_shape3, update_shape

# nnU-Net enlarges the crop for in-plane rotation by sqrt(2) (a square turned by 45 degrees)
# over the smallest scale it plans for.
ROTATION_MARGIN_SCALE = math.sqrt(2) / 0.85


def crop_with_padding(array, start, size, value=0):
    """Crop ``size`` voxels from ``start`` on the last three axes, filling outside with ``value``.

    Args:
        array (ndarray): (..., D, H, W).
        start (tuple[int]): (z, y, x) of the window's first voxel, may be negative.
        size (tuple[int]): (T, H, W) of the window.

    Returns:
        ndarray: (..., T, H, W), a new array of ``array``'s dtype.
    """
    out = np.full(array.shape[:-3] + tuple(size), value, dtype=array.dtype)
    src, dst = [Ellipsis], [Ellipsis]
    for s, n, dim in zip(start, size, array.shape[-3:]):
        lo, hi = max(s, 0), min(s + n, dim)
        if hi <= lo:  # the window misses the volume on this axis
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = array[tuple(src)]
    return out


@TRANSFORMS.register_module()
class RandomPatchCrop3D(BaseTransform):
    """Crop a (T, H, W) training patch from a volume, oversampling foreground like nnU-Net.

    With probability ``fg_prob`` the patch is centred on a random voxel of one foreground
    class, chosen uniformly among the classes present in the volume (if none is present, the
    crop is uniform); otherwise its position is uniform. Following nnU-Net's data loader
    (``get_bbox``), a volume smaller than the patch is zero-padded (image 0, label 0, centred
    padding), and a forced window starts at ``voxel - window // 2`` clipped at the lower start
    bound only: near the far border it may reach past the volume (padded); the voxel is at
    the window's centre except near the lower border, and always inside the final patch.

    Rotation margin (``rotation_margin=True``): the in-plane window is enlarged to
    ceil(P * sqrt(2) / 0.85) so that a later :class:`RandomSpatial3D` can rotate and scale
    without pulling in empty corners, and the crop may then reach half the margin beyond the
    volume border (nnU-Net's ``need_to_pad``). ``RandomSpatial3D`` crops the centre back to
    ``patch_size``, which this transform records in ``results['patch_size']``;
    ``PackVolumeInputs`` refuses a patch that was not cropped back.

    Place it after ``LoadVolume`` and ``NormalizeIntensity3D``.

    Required keys: ``img``; ``gt_seg_map`` for the foreground oversampling.
    Modified keys: ``img``, every key in ``seg_fields``, ``img_shape``.
    Added keys: ``patch_size`` (the final (T, H, W)), ``crop_bbox`` (((z0, z1), (y0, y1),
    (x0, x1)) of the window in volume voxels, may reach outside it).

    Args:
        patch_size (tuple[int]): (T, H, W) of the patch the model sees.
        fg_prob (float): probability of a foreground-centred patch. Default: 0.5.
        rotation_margin (bool): crop the enlarged in-plane window for ``RandomSpatial3D``.
            Default: False.
    """

    def __init__(self, patch_size, fg_prob=0.5, rotation_margin=False):
        self.patch_size = check_shape3('patch_size', patch_size)
        self.fg_prob = check_prob('fg_prob', fg_prob)
        self.rotation_margin = bool(rotation_margin)
        t, h, w = self.patch_size
        self.window = (t, math.ceil(h * ROTATION_MARGIN_SCALE),
                       math.ceil(w * ROTATION_MARGIN_SCALE)) if rotation_margin else (t, h, w)

    def start_bounds(self, shape):
        """Lowest and highest window start per axis (nnU-Net's ``get_bbox`` bounds).

        Returns:
            tuple[list[int], list[int]]: (lower, upper) start, both inclusive.
        """
        lows, highs = [], []
        for dim, win, patch in zip(shape, self.window, self.patch_size):
            need = max(win - patch, win - dim)  # the margin, or what a small volume lacks
            half_up = need - need // 2
            lows.append(-half_up)
            highs.append(max(dim + half_up - win, -half_up))
        return lows, highs

    @cache_randomness
    def _sample_start(self, label, shape):
        lows, highs = self.start_bounds(shape)
        if label is not None and np.random.rand() < self.fg_prob:
            # one comparison per id is several times faster than np.bincount on uint8 labels
            classes = np.array([c for c in range(1, int(label.max()) + 1) if (label == c).any()])
            if classes.size:
                cls = classes[np.random.randint(classes.size)]
                voxels = np.flatnonzero(label.ravel() == cls)
                centre = np.unravel_index(voxels[np.random.randint(voxels.size)], label.shape)
                # nnU-Net clips the centred window at the lower bound only
                return tuple(int(max(c - win // 2, lo)) for c, win, lo in
                             zip(centre, self.window, lows))
        return tuple(int(np.random.randint(lo, hi + 1)) for lo, hi in zip(lows, highs))

    def transform(self, results):
        keys = aligned_seg_fields(results, type(self).__name__)
        shape = results['img'].shape[-3:]
        label = results.get('gt_seg_map') if 'gt_seg_map' in keys else None
        start = self._sample_start(label, shape)
        results['img'] = crop_with_padding(results['img'], start, self.window, 0)
        for key in keys:
            results[key] = crop_with_padding(results[key], start, self.window, 0)
        results['patch_size'] = self.patch_size
        results['crop_bbox'] = tuple((s, s + n) for s, n in zip(start, self.window))
        return update_shape(results)

    def __repr__(self):
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'fg_prob={self.fg_prob}, rotation_margin={self.rotation_margin})')

"""nnU-Net's training patch sampling: random or foreground-centred crops, zero-padded."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .nnunet_patch_rules import nnunet_initial_patch_size
from .random_rotate_scale import check_prob
from .volume_transform_utils import aligned_seg_fields, check_shape3, update_shape


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

    A foreground patch is centred on a random voxel of one foreground class, chosen uniformly
    among the classes present in the volume (if none is present, the crop is uniform); any
    other patch has a uniform position. Which patches are foreground follows nnU-Net 2.5.1:
    ``results['force_fg']``, set per batch position by
    :class:`~mmsam.datasets.ForegroundOversampleBatchSampler` (the last round(B * 0.33) of
    each batch) through :class:`~mmsam.datasets.VolumePatchDataset`. Without it (another
    sampler, or a bare pipeline) each patch is foreground with probability ``fg_prob``
    (nnU-Net's ``probabilistic_oversampling`` option).

    Following nnU-Net's data loader (``get_bbox``), a volume smaller than the patch is
    zero-padded (image 0, label 0, centred padding), and a forced window starts at
    ``voxel - window // 2`` clipped at the lower start bound only: near the far border it may
    reach past the volume (padded); the voxel is at the window's centre except near the lower
    border, and always inside the final patch. The random draws are nnU-Net's, in its order.

    Rotation margin (``rotation_margin=True``): the window is nnU-Net's initial patch size
    (:func:`nnunet_initial_patch_size`: (26, 256, 256) -> (26, 301, 301)), so that a later
    :class:`RandomSpatial3D` can rotate and scale; the crop may then reach half the margin
    beyond the volume border (nnU-Net's ``need_to_pad``: 23 voxels). ``RandomSpatial3D`` crops
    the centre back to ``patch_size``, which this transform records in
    ``results['patch_size']``; ``PackVolumeInputs`` refuses a patch that was not cropped back.

    Place it after ``LoadVolume`` and ``NormalizeIntensity3D``.

    Required keys: ``img``; ``gt_seg_map`` for the foreground oversampling; optional
    ``force_fg``.
    Modified keys: ``img``, every key in ``seg_fields``, ``img_shape``.
    Added keys: ``patch_size`` (the final (T, H, W)), ``crop_bbox`` (((z0, z1), (y0, y1),
    (x0, x1)) of the window in volume voxels, may reach outside it), ``crop_source_shape``
    (the volume's (D, H, W), so that ``RandomSpatial3D`` knows which voxels were padding).

    Args:
        patch_size (tuple[int]): (T, H, W) of the patch the model sees.
        fg_prob (float): probability of a foreground patch when ``results`` has no
            ``force_fg``. Default: 0.33 (nnU-Net's ``oversample_foreground_percent``).
        rotation_margin (bool): crop nnU-Net's enlarged window for ``RandomSpatial3D``.
            Default: False.
    """

    def __init__(self, patch_size, fg_prob=0.33, rotation_margin=False):
        self.patch_size = check_shape3('patch_size', patch_size)
        self.fg_prob = check_prob('fg_prob', fg_prob)
        self.rotation_margin = bool(rotation_margin)
        self.window = nnunet_initial_patch_size(self.patch_size) if rotation_margin \
            else self.patch_size

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
    def _sample_start(self, label, shape, force_fg=None):
        """Window start (z, y, x); ``force_fg`` None draws the choice with ``fg_prob``."""
        lows, highs = self.start_bounds(shape)
        if force_fg is None:
            force_fg = label is not None and np.random.rand() < self.fg_prob
        if label is not None and force_fg:
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
        force_fg = results.get('force_fg')
        start = self._sample_start(label, shape, None if force_fg is None else bool(force_fg))
        results['img'] = crop_with_padding(results['img'], start, self.window, 0)
        for key in keys:
            results[key] = crop_with_padding(results[key], start, self.window, 0)
        results['patch_size'] = self.patch_size
        results['crop_bbox'] = tuple((s, s + n) for s, n in zip(start, self.window))
        results['crop_source_shape'] = tuple(shape)
        return update_shape(results)

    def __repr__(self):
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'fg_prob={self.fg_prob}, rotation_margin={self.rotation_margin})')

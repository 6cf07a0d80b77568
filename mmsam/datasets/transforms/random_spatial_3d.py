"""nnU-Net's spatial augmentation for anisotropic patches: in-plane rotation and scaling."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from scipy import ndimage

from mmsam.registry import TRANSFORMS
from .random_patch_crop_3d import crop_with_padding
from .random_rotate_scale import check_border_value, check_prob, check_range
from .volume_transform_utils import (aligned_seg_fields, channels_view, check_shape3, like_input,
                                     sample_around_one, update_shape)


def inplane_affine(in_hw, out_hw, angle, scale):
    """Matrix and offset mapping output (y, x) to input (y, x) for ``ndimage.affine_transform``.

    Output pixel ``o`` samples input ``c_in + scale * R(angle) (o - c_out)``, with ``c_out =
    (out - 1) / 2`` the output's centre and ``c_in`` the input pixel an integer centre crop
    puts there (``(in - out) // 2 + c_out``, within half a pixel of the input's centre), so
    angle 0 and scale 1 give exactly the crop. ``scale`` multiplies the sampling coordinates
    as batchgenerators does, so a scale > 1 zooms out (content shrinks).
    """
    theta = np.deg2rad(angle)
    matrix = scale * np.array([[np.cos(theta), -np.sin(theta)],
                               [np.sin(theta), np.cos(theta)]])
    in_hw, out_hw = np.asarray(in_hw), np.asarray(out_hw)
    c_out = (out_hw - 1) / 2
    c_in = (in_hw - out_hw) // 2 + c_out
    return matrix, c_in - matrix @ c_out


@TRANSFORMS.register_module()
class RandomSpatial3D(BaseTransform):
    """Rotate about the depth axis and scale in-plane, then centre-crop to the patch size.

    nnU-Net's ``SpatialTransform`` in its "dummy 2D" mode (MaskSAM's patches are all
    anisotropic): rotation by U(``rotate_range``) degrees with probability ``rotate_prob`` and
    one in-plane scale factor with probability ``scale_prob`` (drawn as batchgenerators does:
    U(low, 1) or U(1, high) with equal chance, see :func:`sample_around_one`), combined into
    one affine map applied to every slice (identity along depth). The image is resampled with
    a spline of order ``img_order`` (3), label maps with nearest neighbour (``seg_order=0``) or,
    as nnU-Net does, ``seg_order=1``: each label's indicator resampled linearly and painted
    where it reaches 0.5 (higher ids win ties). Outside the input both are filled with 0.

    Output size: ``patch_size``, else ``results['patch_size']`` (set by
    :class:`RandomPatchCrop3D`), else the input size. A larger input (the crop's rotation
    margin) is cropped around its centre, as nnU-Net's ``random_crop=False``; when neither
    rotation nor scaling is drawn that crop is an integer slice (no interpolation). Depth is
    always cropped or zero-padded about the centre, never interpolated.

    Required keys: ``img``; optional ``seg_fields``, ``patch_size``.
    Modified keys: ``img``, every key in ``seg_fields``, ``img_shape``.

    Args:
        patch_size (tuple[int], optional): output (T, H, W). Default: None.
        rotate_prob (float): probability of a rotation. Default: 0.2.
        rotate_range (tuple[float]): degrees, about the depth axis. Default: (-180, 180).
        scale_prob (float): probability of scaling. Default: 0.2.
        scale_range (tuple[float]): coordinate scale factor (> 1 zooms out). Default:
            (0.7, 1.4).
        img_order (int): spline order for the image (0-5). Default: 3.
        seg_order (int): 0 nearest labels, 1 nnU-Net's per-label linear. Default: 0.
        img_border_value (float): image fill outside the input. Default: 0.
        seg_border_value (int): label fill outside the input. Default: 0 (background).
    """

    def __init__(self, patch_size=None, rotate_prob=0.2, rotate_range=(-180., 180.),
                 scale_prob=0.2, scale_range=(0.7, 1.4), img_order=3, seg_order=0,
                 img_border_value=0., seg_border_value=0):
        self.patch_size = None if patch_size is None else check_shape3('patch_size', patch_size)
        self.rotate_prob = check_prob('rotate_prob', rotate_prob)
        self.rotate_range = check_range('rotate_range', rotate_range)
        self.scale_prob = check_prob('scale_prob', scale_prob)
        self.scale_range = check_range('scale_range', scale_range, minimum=0, strict=True)
        if img_order not in range(6):
            raise ValueError(f'img_order must be a spline order 0-5, got {img_order!r}')
        self.img_order = img_order
        if seg_order not in (0, 1):
            raise ValueError(f'seg_order must be 0 (nearest) or 1 (per-label linear), got '
                             f'{seg_order!r}')
        self.seg_order = seg_order
        self.img_border_value = check_border_value('img_border_value', img_border_value)
        self.seg_border_value = check_border_value('seg_border_value', seg_border_value)

    @cache_randomness
    def _sample(self):
        """(angle in degrees, scale), or None when neither is drawn."""
        rotate = np.random.rand() < self.rotate_prob
        angle = np.random.uniform(*self.rotate_range) if rotate else 0.
        scaled = np.random.rand() < self.scale_prob
        scale = sample_around_one(self.scale_range) if scaled else 1.
        return (angle, scale) if rotate or scaled else None

    def _warp(self, volume, out_shape, matrix, offset, order, cval):
        """Affine-resample every (H, W) slice of a (..., D, H, W) volume; depth already fits."""
        flat = volume.reshape((-1, ) + volume.shape[-2:])
        out = np.empty((flat.shape[0], ) + tuple(out_shape[1:]), dtype=volume.dtype)
        for i, plane in enumerate(flat):
            ndimage.affine_transform(plane, matrix, offset, output_shape=out_shape[1:],
                                     output=out[i], order=order, mode='constant', cval=cval)
        return out.reshape(volume.shape[:-2] + tuple(out_shape[1:]))

    def _warp_labels(self, seg, out_shape, matrix, offset):
        if self.seg_order == 0:
            return self._warp(seg, out_shape, matrix, offset, 0, self.seg_border_value)
        out = np.full(seg.shape[:-2] + tuple(out_shape[1:]), self.seg_border_value, seg.dtype)
        for value in np.unique(seg):
            weight = self._warp((seg == value).astype(np.float32), out_shape, matrix, offset,
                                1, 0.)
            out[weight >= 0.5] = value
        return out

    def transform(self, results):
        keys = aligned_seg_fields(results, type(self).__name__)
        img = results['img']
        in_shape = img.shape[-3:]
        out_shape = self.patch_size or tuple(results.get('patch_size') or in_shape)
        params = self._sample()
        # depth: integer centre crop/pad; in-plane: integer too unless an affine is drawn
        start = [(i - o) // 2 for i, o in zip(in_shape, out_shape)]
        if params is None:
            results['img'] = crop_with_padding(img, start, out_shape, self.img_border_value)
            for key in keys:
                results[key] = crop_with_padding(results[key], start, out_shape,
                                                 self.seg_border_value)
            return update_shape(results)
        depth_shape = (out_shape[0], ) + tuple(in_shape[1:])
        depth_start = (start[0], 0, 0)
        matrix, offset = inplane_affine(in_shape[1:], out_shape[1:], *params)
        channels = channels_view(crop_with_padding(img, depth_start, depth_shape,
                                                   self.img_border_value))
        warped = self._warp(channels, out_shape, matrix, offset, self.img_order,
                            self.img_border_value)
        results['img'] = like_input(warped, img)
        for key in keys:
            seg = crop_with_padding(results[key], depth_start, depth_shape, self.seg_border_value)
            results[key] = self._warp_labels(seg, out_shape, matrix, offset)
        return update_shape(results)

    def __repr__(self):
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'rotate_prob={self.rotate_prob}, rotate_range={self.rotate_range}, '
                f'scale_prob={self.scale_prob}, scale_range={self.scale_range}, '
                f'img_order={self.img_order}, seg_order={self.seg_order})')

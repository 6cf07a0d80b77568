"""nnU-Net 2.5.1's spatial augmentation (batchgeneratorsv2): rotation and scaling, then crop."""
import numpy as np

from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform
from .nnunet_patch_rules import nnunet_dummy_2d, nnunet_rotation_range
from .random_patch_crop_3d import crop_with_padding
from .random_rotate_scale import check_prob, check_range
from .volume_transform_utils import check_shape3

# nnU-Net's data loader pads labels outside the volume with -1; its pipeline ends with
# RemoveLabelTansform(-1, 0)
OUTSIDE_LABEL = -1


def outside_volume_mask(results, shape):
    """(D, H, W) bool mask of the voxels ``RandomPatchCrop3D`` padded, or None if unknown.

    Uses ``crop_bbox`` and ``crop_source_shape``; None when they are missing or the window no
    longer matches ``shape`` (a transform in between changed it).
    """
    bbox, source = results.get('crop_bbox'), results.get('crop_source_shape')
    if bbox is None or source is None or tuple(b - a for a, b in bbox) != tuple(shape):
        return None
    mask = np.ones(shape, dtype=bool)
    inside = tuple(slice(max(0, -a), min(b, dim) - a) for (a, b), dim in zip(bbox, source))
    mask[inside] = False
    return mask


@TRANSFORMS.register_module()
class RandomSpatial3D(BatchgeneratorsV2Transform):
    """Rotate and scale a patch, then crop its centre to the patch size, as nnU-Net 2.5.1.

    Calls batchgeneratorsv2's ``SpatialTransform`` with nnU-Net 2.5.1's arguments
    (``patch_center_dist_from_border=0``, ``random_crop=False``, ``p_elastic_deform=0``,
    ``p_rotation=0.2``, ``p_scaling=0.2``, ``scaling=(0.7, 1.4)`` drawn uniformly,
    ``p_synchronize_scaling_across_axes=1``, ``bg_style_seg_sampling=False``). For an
    anisotropic patch ("dummy 2D", max / T > 3) it runs between ``Convert3DTo2DTransform`` and
    ``Convert2DTo3DTransform`` (every slice gets the same in-plane rotation and scale;
    rotation U(-180, 180) degrees), otherwise in 3D (three angles U(-30, 30)). Images are
    resampled bilinearly (``grid_sample``, zeros outside); each label's indicator is resampled
    bilinearly and painted where it exceeds 0.7, voxels no label reaches take the label with
    the largest weight. When neither rotation nor scaling is drawn the centre crop is an
    integer slice. The scale multiplies the sampling coordinates: > 1 zooms out.

    Labels outside the volume: nnU-Net's loader pads them with -1, a label of its own in the
    0.7 rule, and sets -1 to 0 at the end of its pipeline. This transform does the same, from
    ``crop_bbox`` and ``crop_source_shape`` written by :class:`RandomPatchCrop3D`.

    Output size: ``patch_size``, else ``results['patch_size']`` (set by
    :class:`RandomPatchCrop3D`), else the input size. In dummy 2D mode the depth is cropped or
    padded about the centre first (nnU-Net's window already has the patch's depth).

    Required keys: ``img``; optional ``seg_fields``, ``patch_size``, ``crop_bbox``,
    ``crop_source_shape``.
    Modified keys: ``img``, every key in ``seg_fields``, ``img_shape``.

    Args:
        patch_size (tuple[int], optional): output (T, H, W). Default: None.
        rotate_prob (float): probability of a rotation. Default: 0.2.
        rotate_range (tuple[float], optional): degrees; default: nnU-Net's ((-180, 180) in
            dummy 2D mode, else (-30, 30)).
        scale_prob (float): probability of scaling. Default: 0.2.
        scale_range (tuple[float]): coordinate scale factor, U(low, high). Default:
            (0.7, 1.4).
        dummy_2d (bool, optional): in-plane only; default: nnU-Net's rule on the output size.
    """

    uses_segmentation = True

    def __init__(self, patch_size=None, rotate_prob=0.2, rotate_range=None, scale_prob=0.2,
                 scale_range=(0.7, 1.4), dummy_2d=None):
        from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
        from batchgeneratorsv2.transforms.utils.pseudo2d import (Convert2DTo3DTransform,
                                                                 Convert3DTo2DTransform)
        self._classes = (SpatialTransform, Convert3DTo2DTransform, Convert2DTo3DTransform)
        self.patch_size = None if patch_size is None else check_shape3('patch_size', patch_size)
        self.rotate_prob = check_prob('rotate_prob', rotate_prob)
        self.rotate_range = None if rotate_range is None else \
            check_range('rotate_range', rotate_range)
        self.scale_prob = check_prob('scale_prob', scale_prob)
        self.scale_range = check_range('scale_range', scale_range, minimum=0, strict=True)
        self.dummy_2d = None if dummy_2d is None else bool(dummy_2d)

    def build(self, out_shape):
        """batchgeneratorsv2's transforms for a (T, H, W) output, and whether it is dummy 2D."""
        spatial, to_2d, to_3d = self._classes
        dummy_2d = nnunet_dummy_2d(out_shape) if self.dummy_2d is None else self.dummy_2d
        degrees = self.rotate_range or nnunet_rotation_range(out_shape)
        transform = spatial(
            tuple(out_shape[1:]) if dummy_2d else tuple(out_shape),
            patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0,
            p_rotation=self.rotate_prob,
            rotation=tuple(d / 360 * 2. * np.pi for d in degrees),  # nnU-Net's conversion
            p_scaling=self.scale_prob, scaling=self.scale_range,
            p_synchronize_scaling_across_axes=1, bg_style_seg_sampling=False)
        return ([to_2d(), transform, to_3d()] if dummy_2d else [transform]), dummy_2d

    def transform(self, results):
        img = results['img']
        in_shape = tuple(img.shape[-3:])
        out_shape = self.patch_size or tuple(results.get('patch_size') or in_shape)
        transforms, dummy_2d = self.build(out_shape)
        data = self.to_data_dict(results)
        seg = data.get('segmentation')
        if seg is not None:
            outside = outside_volume_mask(results, in_shape)
            if outside is not None:
                seg[:, outside] = OUTSIDE_LABEL
        if dummy_2d and in_shape[0] != out_shape[0]:
            start = ((in_shape[0] - out_shape[0]) // 2, 0, 0)
            size = (out_shape[0], ) + in_shape[1:]
            data['image'] = data['image'].new_tensor(
                crop_with_padding(data['image'].numpy(), start, size, 0))
            if seg is not None:
                data['segmentation'] = seg.new_tensor(
                    crop_with_padding(seg.numpy(), start, size, OUTSIDE_LABEL))
        for transform in transforms:
            data = transform(**data)
        if 'segmentation' in data:
            data['segmentation'][data['segmentation'] == OUTSIDE_LABEL] = 0
        return self.from_data_dict(data, results)

    def __repr__(self):
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'rotate_prob={self.rotate_prob}, rotate_range={self.rotate_range}, '
                f'scale_prob={self.scale_prob}, scale_range={self.scale_range}, '
                f'dummy_2d={self.dummy_2d})')

"""Packing a 3D volume or patch into ``inputs`` (C, T, H, W) and a ``SegDataSample``."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.registry import TRANSFORMS
from .volume_transform_utils import channels_view

DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'case_id', 'spacing', 'native_shape',
                     'native_spacing', 'ori_shape', 'img_shape', 'crop_bbox', 'flip_axes')


@TRANSFORMS.register_module()
class PackVolumeInputs(BaseTransform):
    """Pack ``img`` (D, H, W) or (C, D, H, W) and ``gt_seg_map`` (D, H, W) for 3D models.

    Returns ``inputs``: float32 tensor (C, T, H, W) (a single-channel volume gets C = 1), and
    ``data_samples``: a ``SegDataSample`` with ``gt_sem_seg = PixelData(data=LongTensor
    (T, H, W))`` (when a label was loaded) and the metainfo of ``meta_keys`` found in
    ``results``, plus ``is_volume=True``. In test pipelines with
    ``LoadVolume(native_label=True)`` the label is on the native grid, (D0, H0, W0).

    Args:
        meta_keys (Sequence[str]): keys copied into the metainfo when present.
    """

    def __init__(self, meta_keys=DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results):
        img = results['img']
        patch = results.get('patch_size')
        if patch is not None and tuple(img.shape[-3:]) != tuple(patch):
            raise ValueError(
                f'PackVolumeInputs: the patch is {tuple(img.shape[-3:])}, not the patch_size '
                f'{tuple(patch)} RandomPatchCrop3D recorded: with rotation_margin=True a '
                'RandomSpatial3D must follow the crop to cut the margin off')
        channels = np.ascontiguousarray(channels_view(img), dtype=np.float32)
        sample = SegDataSample()
        if 'gt_seg_map' in results:
            seg = np.ascontiguousarray(results['gt_seg_map'])
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(seg.astype(np.int64)))
        meta = {key: results[key] for key in self.meta_keys if key in results}
        meta['is_volume'] = True
        sample.set_metainfo(meta)
        return dict(inputs=torch.from_numpy(channels), data_samples=sample)

    def __repr__(self):
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'

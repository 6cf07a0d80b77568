"""Run a batchgeneratorsv2 transform (nnU-Net 2.5.1's augmentation) on an mmsam results dict."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from .volume_transform_utils import aligned_seg_fields, channels_view, like_input


def with_probability(transform, prob):
    """Wrap a batchgeneratorsv2 transform in its ``RandomTransform`` (drawn with torch.rand)."""
    from batchgeneratorsv2.transforms.utils.random import RandomTransform
    return RandomTransform(transform, apply_probability=prob)


class BatchgeneratorsV2Transform(BaseTransform):
    """Base of the 3D augmentations that call batchgeneratorsv2, as nnU-Net 2.5.1 does.

    Subclasses build ``self.bg_transform`` (a batchgeneratorsv2 ``BasicTransform``) in
    ``__init__``, importing batchgeneratorsv2 there so that ``import mmsam`` stays fast. This
    class converts ``results['img']`` ((D, H, W) or (C, D, H, W)) to the float32 (C, D, H, W)
    tensor batchgeneratorsv2 takes as ``image`` and, when ``uses_segmentation``, the maps in
    ``seg_fields`` to an int16 (K, D, H, W) ``segmentation`` (as nnU-Net's data loader gives
    them), runs the transform and writes the results back in the input's rank and dtypes.
    The random draws are batchgeneratorsv2's (torch's and numpy's global generators, which
    mmengine seeds per worker), so a seeded run equals nnU-Net's transform on the same arrays.
    """

    uses_segmentation = False

    def to_data_dict(self, results):
        """``results`` as batchgeneratorsv2's data dict (copies: the transforms work in place)."""
        data = dict(image=torch.from_numpy(
            np.array(channels_view(results['img']), dtype=np.float32)))
        if self.uses_segmentation:
            keys = aligned_seg_fields(results, type(self).__name__)
            if keys:
                data['segmentation'] = torch.from_numpy(
                    np.stack([results[k] for k in keys]).astype(np.int16))
        return data

    def from_data_dict(self, data, results):
        """Write batchgeneratorsv2's outputs back into ``results``."""
        img = results['img']
        results['img'] = like_input(data['image'].numpy().astype(np.float32, copy=False), img)
        if 'segmentation' in data:
            keys = list(results.get('seg_fields', []))
            seg = data['segmentation'].numpy()
            for i, key in enumerate(keys):
                results[key] = seg[i].astype(results[key].dtype)
        results['img_shape'] = tuple(results['img'].shape[-3:])
        return results

    def transform(self, results):
        data = self.bg_transform(**self.to_data_dict(results))
        return self.from_data_dict(data, results)

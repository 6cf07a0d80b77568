"""nnU-Net's mirroring augmentation: flip a volume and its labels along each axis at random."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob
from .volume_transform_utils import aligned_seg_fields


@TRANSFORMS.register_module()
class RandomMirror3D(BaseTransform):
    """Flip along each of ``axes`` of (D, H, W) independently with probability ``prob``.

    nnU-Net 2.5.1's ``MirrorTransform(allowed_axes=(0, 1, 2))`` (batchgeneratorsv2): an exact
    permutation of voxels, applied to the image (every channel) and every map in
    ``seg_fields``. The draws are batchgeneratorsv2's, ``torch.rand(1) < prob`` per axis in
    ``axes`` order, so a seeded run flips as nnU-Net's (whose ``prob`` is fixed at 0.5).
    Outputs are contiguous copies.

    Required keys: ``img``; optional ``seg_fields``.
    Modified keys: ``img``, every key in ``seg_fields``.
    Added keys: ``flip_axes`` (tuple of the flipped axes of (D, H, W)).

    Args:
        prob (float): probability per axis. Default: 0.5.
        axes (tuple[int]): axes of (D, H, W) that may flip: 0 depth, 1 H, 2 W. Default: all.
    """

    def __init__(self, prob=0.5, axes=(0, 1, 2)):
        self.prob = check_prob('prob', prob)
        if not set(axes) <= {0, 1, 2} or len(set(axes)) != len(axes):
            raise ValueError(f'axes must be distinct axes of (D, H, W) in 0..2, got {axes!r}')
        self.axes = tuple(int(a) for a in axes)

    @cache_randomness
    def _sample(self):
        return tuple(a for a in self.axes if torch.rand(1).item() < self.prob)

    def transform(self, results):
        keys = aligned_seg_fields(results, type(self).__name__)
        flips = self._sample()
        results['flip_axes'] = flips
        if not flips:
            return results
        # axes counted from the end, so a (C, D, H, W) image flips like a (D, H, W) label
        neg = tuple(a - 3 for a in flips)
        for key in ['img'] + keys:
            results[key] = np.ascontiguousarray(np.flip(results[key], axis=neg))
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob}, axes={self.axes})'

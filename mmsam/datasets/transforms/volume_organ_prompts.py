"""MedSAM2's evaluation prompts: per organ, a key slice and the ground truth's box on it."""
import zlib

import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS
from ..io.npz import load_npz
from .sample_slice_sequence import box_of_mask

KEY_SLICE_RULES = ('middle', 'largest')


def organ_key_slice(organ_mask, rule='middle'):
    """The key slice of one organ in a (D, H, W) bool mask.

    ``'middle'``: the slice halfway along the organ's z extent, ``(z_min + z_max) // 2``; if the
    organ skips that slice (a non-convex organ), the nearest slice that shows it (the lower one
    on a tie). ``'largest'``: the slice with the most organ pixels (the lowest on a tie).

    Args:
        organ_mask (ndarray): (D, H, W) bool, not empty.
        rule (str): ``'middle'`` or ``'largest'``.

    Returns:
        int: the slice index.
    """
    areas = organ_mask.reshape(organ_mask.shape[0], -1).sum(axis=1)
    present = np.flatnonzero(areas)
    if rule == 'largest':
        return int(np.argmax(areas))
    middle = (int(present[0]) + int(present[-1])) // 2
    return int(present[np.argmin(np.abs(present - middle))])


@TRANSFORMS.register_module()
class VolumeOrganPrompts(BaseTransform):
    """Box prompts for every organ of a whole test volume, one prompt per organ.

    MedSAM2 (bowang-lab/MedSAM2) prompts each 3D target once: a box from the ground truth on a
    key slice, propagated forwards and backwards through the volume by SAM 2's memory. Its
    scripts take the key slice from the dataset (DeepLesion's RECIST slice) or the volume's
    middle (``medsam2_infer_general.py``); for labelled organs this transform takes the middle
    of the organ's own z extent (``key_slice='middle'``, the nearest slice showing the organ if
    the middle one does not) or the slice of largest area (``'largest'``). The box is the tight
    (x0, y0, x1, y1) box of the organ on that slice, optionally widened by a random shift of
    0..``max_shift`` pixels per side as MedSAM's ``mask2D_to_bbox`` (clipped to the image),
    drawn from ``seed`` and the case's path only, so evaluation repeats exactly.

    The boxes are in the pixels of ``img`` (the stored volume). When ``gt_seg_map`` is on
    another grid (``LoadVolume(native_label=True)`` on resampled data: the metric's label), the
    stored volume's own ``label`` is read from ``img_path`` for the prompts and ``gt_seg_map``
    is left as it is.

    Required keys: ``img``, ``gt_seg_map`` (D, H, W), ``img_path``.
    Added keys: ``prompt_labels`` (K,) int64 organ classes present (increasing),
    ``key_slices`` (K,) int64, ``prompt_boxes`` (K, 4) float32.

    Args:
        key_slice (str): ``'middle'`` or ``'largest'``.
        classes (Sequence[int], optional): the organs to prompt (those present in the case);
            all non-zero labels by default.
        max_shift (int): largest random widening of each box side, pixels. Default: 0.
        seed (int): seed of the shift. Default: 0.
        require (bool): raise if one of ``classes`` is absent from a case (instead of skipping
            it). Default: False.
    """

    def __init__(self, key_slice='middle', classes=None, max_shift=0, seed=0, require=False):
        if key_slice not in KEY_SLICE_RULES:
            raise ValueError(f'VolumeOrganPrompts key_slice must be one of {KEY_SLICE_RULES}, '
                             f'got {key_slice!r}')
        if int(max_shift) < 0:
            raise ValueError(f'VolumeOrganPrompts max_shift must be >= 0, got {max_shift}')
        self.key_slice = key_slice
        self.classes = None if classes is None else tuple(int(c) for c in classes)
        self.max_shift, self.seed, self.require = int(max_shift), int(seed), bool(require)

    def transform(self, results):
        labels = results['gt_seg_map']
        where = results.get('img_path', 'this volume')
        image_shape = tuple(results['img'].shape[-3:])
        if tuple(labels.shape) != image_shape:  # the native label: box on the stored grid
            labels = load_npz(where, keys=('label', ))['label']
            if tuple(labels.shape) != image_shape:
                raise ValueError(f'VolumeOrganPrompts: {where} has a label of shape '
                                 f'{tuple(labels.shape)} but an image of {image_shape}; '
                                 're-run the converter for it')
        present = [int(c) for c in np.unique(labels) if c > 0]
        wanted = present if self.classes is None else list(self.classes)
        missing = [c for c in wanted if c not in present]
        if missing and self.require:
            raise ValueError(f'VolumeOrganPrompts: {where} has no voxel of organ(s) {missing} '
                             f'(present: {present}); nothing to box there')
        organs = [c for c in wanted if c in present]
        if not organs:
            raise ValueError(f'VolumeOrganPrompts: {where} has none of the organs {wanted} '
                             f'(present: {present}); nothing to prompt')
        rng = np.random.default_rng([self.seed, zlib.crc32(str(where).encode())])
        height, width = labels.shape[1:]
        keys, boxes = [], []
        for organ in sorted(organs):
            mask = labels == organ
            key = organ_key_slice(mask, self.key_slice)
            box = box_of_mask(mask[key])
            if self.max_shift:
                shift = rng.integers(0, self.max_shift + 1)
                box = box + np.array([-shift, -shift, shift, shift], dtype=np.float32)
                box = np.clip(box, 0, [width - 1, height - 1, width - 1, height - 1])
            keys.append(key)
            boxes.append(box.astype(np.float32))
        results['prompt_labels'] = np.array(sorted(organs), dtype=np.int64)
        results['key_slices'] = np.array(keys, dtype=np.int64)
        results['prompt_boxes'] = np.stack(boxes)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(key_slice={self.key_slice!r}, '
                f'classes={self.classes}, max_shift={self.max_shift}, seed={self.seed})')

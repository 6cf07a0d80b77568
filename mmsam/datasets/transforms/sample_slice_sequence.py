"""MedSAM2's training sample: T consecutive slices, one organ, a box on the key slice."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS
from .volume_transform_utils import update_shape

KEY_POSITIONS = ('first', 'random')


def box_of_mask(mask):
    """Tight box of a non-empty (H, W) mask: (x0, y0, x1, y1) pixel indices, float32 (4,)."""
    rows, cols = np.nonzero(mask)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32)


@TRANSFORMS.register_module()
class SampleSliceSequence(BaseTransform):
    """Cut a sequence of ``num_frames`` consecutive slices and pick one organ to segment in it.

    MedSAM2 trains SAM 2 on volumes as videos (bowang-lab/MedSAM2,
    ``sam2/configs/sam2.1_hiera_tiny_finetune512_dev.yaml`` and
    ``training/dataset/vos_sampler.py``): ``RandomUniformSampler`` draws a window of
    ``num_frames = 8`` consecutive slices with a uniform start, redrawing until the window's
    FIRST slice shows an object, and SAM 2's trainer conditions on that first slice
    (``num_init_cond_frames_for_train``: frame 0, with a box from the ground truth or the mask
    itself). Drawing the start uniformly among the starts whose first slice has foreground is
    the same distribution as that rejection loop. mmsam segments one organ per prompt: the
    organ is drawn uniformly among the classes visible on the key slice (MedSAM2 draws up to
    ``max_num_objects = 5`` of them, each tracked separately).

    ``key_position='first'`` is the recipe above (the key slice is the window's first slice);
    ``'random'`` takes the start uniformly among the windows with foreground anywhere and the key
    slice uniformly among the window's slices with foreground (a prompt in the middle of the
    sequence, for bidirectional training).

    Required keys: ``img`` (D, H, W) or (C, D, H, W), ``gt_seg_map`` (D, H, W) class labels,
    ``img_path`` (for errors).
    Modified keys: ``img`` (the T slices), ``gt_seg_map`` (T, H, W) uint8 0/1 of the chosen
    organ, ``img_shape``; the other ``seg_fields`` are cut to the window too.
    Added keys: ``key_slice`` (int, index in the window), ``prompt_box`` (4,) float32 tight
    (x0, y0, x1, y1) box of the organ on the key slice, ``prompt_label`` (int, the organ's
    class), ``slice_start`` (int, the window's first slice in the volume).

    Args:
        num_frames (int): T, the number of consecutive slices. Default: 8 (MedSAM2).
        key_position (str): ``'first'`` or ``'random'``.
        classes (Sequence[int], optional): organ labels that may be chosen; all non-zero
            labels by default.
    """

    def __init__(self, num_frames=8, key_position='first', classes=None):
        if int(num_frames) < 1:
            raise ValueError(f'SampleSliceSequence num_frames must be >= 1, got {num_frames}')
        if key_position not in KEY_POSITIONS:
            raise ValueError(f'SampleSliceSequence key_position must be one of {KEY_POSITIONS}, '
                             f'got {key_position!r}')
        self.num_frames = int(num_frames)
        self.key_position = key_position
        self.classes = None if classes is None else tuple(int(c) for c in classes)

    def _allowed(self, labels):
        """(D, H, W) bool: voxels of the organs that may be chosen."""
        if self.classes is None:
            return labels > 0
        return np.isin(labels, self.classes)

    def transform(self, results):
        labels = results['gt_seg_map']
        where = results.get('img_path', 'this volume')
        depth = labels.shape[0]
        if depth < self.num_frames:
            raise ValueError(f'SampleSliceSequence: {where} has {depth} slices, fewer than '
                             f'num_frames={self.num_frames}; lower num_frames or pad the data')
        allowed = self._allowed(labels)
        slice_has = allowed.reshape(depth, -1).any(axis=1)
        if not slice_has.any():
            raise ValueError(f'SampleSliceSequence: {where} has no voxel of the organs '
                             f'{self.classes or "> 0"} to prompt; drop the case or the class')
        num_starts = depth - self.num_frames + 1
        if self.key_position == 'first':
            starts = np.flatnonzero(slice_has[:num_starts])
        else:
            window_has = np.array([slice_has[s:s + self.num_frames].any()
                                   for s in range(num_starts)])
            starts = np.flatnonzero(window_has)
        if starts.size == 0:  # organs only in the last T - 1 slices: no window starts on one
            raise ValueError(f'SampleSliceSequence: no window of {self.num_frames} slices in '
                             f'{where} starts on a slice with an organ (organs on slices '
                             f'{np.flatnonzero(slice_has).tolist()}); lower num_frames or use '
                             "key_position='random'")
        start = int(starts[np.random.randint(len(starts))])
        if self.key_position == 'first':
            key = 0
        else:
            keys = np.flatnonzero(slice_has[start:start + self.num_frames])
            key = int(keys[np.random.randint(len(keys))])
        key_labels = labels[start + key]
        visible = np.unique(key_labels[allowed[start + key]])
        organ = int(visible[np.random.randint(len(visible))])

        window = slice(start, start + self.num_frames)
        results['img'] = results['img'][..., window, :, :]
        for field in results.get('seg_fields', []):
            if field != 'gt_seg_map':
                results[field] = results[field][window]
        target = (labels[window] == organ).astype(np.uint8)
        results['gt_seg_map'] = target
        results['key_slice'] = key
        results['prompt_box'] = box_of_mask(target[key])
        results['prompt_label'] = organ
        results['slice_start'] = start
        update_shape(results)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'key_position={self.key_position!r}, classes={self.classes})')

"""Simulated user clicks for interactive segmentation: an initial prompt, then corrections.

The protocol of SAM-Med2D / nnInteractive training and of the CVPR 2025 interactive challenge:
an initial box or point from the ground truth, then, after each prediction, one click at the
centre of the largest error region, positive in a false negative, negative in a false
positive. The centre is the voxel of that connected region farthest from its boundary (the
maximum of its Euclidean distance transform, the image border counting as boundary), as in
RITM's click simulation.
"""
import zlib
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from scipy import ndimage

from mmsam.registry import TRANSFORMS

Rng = Union[np.random.Generator, int, None]

INITIAL_PROMPTS = ('box', 'point')
EMPTY_POLICIES = ('error', 'no_prompt')
POSITIVE, NEGATIVE = 1, 0  # SAM's point labels: 1 foreground, 0 background


def _as_rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def index_to_xyz(index: Sequence[int]) -> np.ndarray:
    """Array index (row, col) or (slice, row, col) to a point (x, y) or (x, y, z)."""
    return np.asarray(index, np.float32)[::-1].copy()


def largest_region_centre(mask: np.ndarray, rng: Rng = None,
                          spacing: Optional[Sequence[float]] = None
                          ) -> Optional[Tuple[np.ndarray, float, int]]:
    """The centre of the largest connected region of a mask, ties broken by ``rng``.

    Regions are face-connected (4-neighbours in 2D, 6 in 3D) and compared by voxel count. The
    centre is the region's voxel farthest from the region's boundary, outside the array
    counting as boundary, so it is never on the image edge unless the region is that thin.

    Args:
        mask (ndarray): (H, W) or (D, H, W) binary mask.
        rng (np.random.Generator | int | None): breaks ties between equally large regions and
            equally deep voxels.
        spacing (sequence[float] | None): voxel size per axis for the distances; None: voxels.

    Returns:
        tuple[ndarray, float, int] | None: the centre's array index (ndim,) int64, its distance
        to the boundary, and the region's size; None for an empty mask.
    """
    mask = np.asarray(mask) != 0
    if not mask.any():
        return None
    return _largest_regions_centre([mask], _as_rng(rng), spacing)[:3]


def _largest_regions_centre(masks, rng, spacing):
    """Centre of the largest face-connected region among several masks' regions.

    Returns:
        tuple: (index (ndim,) int64, depth, size, which mask it came from).
    """
    structure = ndimage.generate_binary_structure(masks[0].ndim, 1)
    regions = []  # (which mask, labels, region id) of every region
    sizes = []
    for which, mask in enumerate(masks):
        labels, count = ndimage.label(mask, structure=structure)
        region_sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        regions += [(which, labels, region + 1) for region in range(count)]
        sizes += region_sizes.tolist()
    sizes = np.asarray(sizes)
    largest = np.flatnonzero(sizes == sizes.max())
    which, labels, region = regions[int(largest[rng.integers(len(largest))])]
    box = ndimage.find_objects((labels == region).astype(np.uint8))[0]
    # Pad the region's box with background so the image border counts as boundary too.
    inside = np.pad(labels[box] == region, 1)
    depth = ndimage.distance_transform_edt(inside, sampling=spacing)[
        tuple(slice(1, -1) for _ in box)]
    deepest = np.argwhere(depth == depth.max())
    offset = deepest[rng.integers(len(deepest))]
    index = offset + np.array([s.start for s in box])
    return index.astype(np.int64), float(depth.max()), int(sizes.max()), which


def next_click(pred: np.ndarray, gt: np.ndarray, rng: Rng = None,
               spacing: Optional[Sequence[float]] = None,
               valid: Optional[np.ndarray] = None) -> Optional[Tuple[np.ndarray, int]]:
    """The next simulated click: the centre of the largest error region.

    Args:
        pred (ndarray): (H, W) or (D, H, W) binary prediction.
        gt (ndarray): same shape, binary ground truth.
        rng (np.random.Generator | int | None): breaks ties (equally large regions, equally
            deep voxels); a fixed seed gives the same click every time.
        spacing (sequence[float] | None): voxel size per axis for the distance to the region's
            boundary; None measures in voxels.
        valid (ndarray | None): same shape, bool; voxels outside it (e.g. ignore_index) are
            never errors.

    Returns:
        tuple[ndarray, int] | None: the point (x, y) or (x, y, z) as float32 pixel indices and
        its label (1 positive, in a false negative; 0 negative, in a false positive); None
        when the prediction has no error.
    """
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    if pred.shape != gt.shape or pred.ndim not in (2, 3):
        raise ValueError(f'next_click: pred {pred.shape} and gt {gt.shape} must be one 2D '
                         '(H, W) or 3D (D, H, W) shape')
    valid = np.ones_like(gt) if valid is None else np.asarray(valid, bool)
    false_negative, false_positive = gt & ~pred & valid, pred & ~gt & valid
    if not (false_negative.any() or false_positive.any()):
        return None
    index, _, _, which = _largest_regions_centre([false_negative, false_positive],
                                                 _as_rng(rng), spacing)
    return index_to_xyz(index), POSITIVE if which == 0 else NEGATIVE


def box_from_mask(mask: np.ndarray, jitter: int = 0, rng: Rng = None) -> np.ndarray:
    """Tight box of a non-empty mask, optionally jittered, clipped to the image.

    Args:
        mask (ndarray): (H, W) or (D, H, W) binary mask, not empty.
        jitter (int): largest random shift of each coordinate, in pixels.
        rng (np.random.Generator | int | None): draws the jitter.

    Returns:
        ndarray: (4,) ``(x0, y0, x1, y1)`` or (6,) ``(x0, y0, z0, x1, y1, z1)`` float32 pixel
        indices (inclusive), with ``x1 >= x0`` etc.
    """
    mask = np.asarray(mask) != 0
    indices = np.argwhere(mask)
    if not len(indices):
        raise ValueError('box_from_mask: the mask is empty, there is nothing to box')
    low, high = index_to_xyz(indices.min(0)), index_to_xyz(indices.max(0))
    if jitter:
        shift = _as_rng(rng).integers(-jitter, jitter + 1, size=(2, mask.ndim))
        top = index_to_xyz(np.array(mask.shape) - 1)
        low = np.clip(low + shift[0], 0, top)
        high = np.maximum(np.clip(high + shift[1], 0, top), low)
    return np.concatenate([low, high]).astype(np.float32)


@TRANSFORMS.register_module()
class ClickSimulator(BaseTransform):
    """Simulate a user's prompts: an initial box or point, then one correction per call.

    On a sample without ``prompt_points`` it adds the initial prompt from the target mask:
    ``initial='box'`` its tight box (``prompt_box``, optionally jittered) and no points;
    ``initial='point'`` one positive click at the centre of the target's largest region. On a
    sample with a previous prediction (``results[prediction_key]``, the same shape as the
    label) it appends one click at the centre of the largest error region (see
    :func:`next_click`); none when the prediction has no error. An interactive loop calls it
    after every prediction; nothing here is differentiable, so no gradient flows through the
    click choice.

    The target is the label's foreground (``target_class=None``: every class but 0 and
    ``ignore_index``) or one class; ``ignore_index`` voxels are never errors. The label is
    not changed. 2D labels (H, W) give (x, y) points and (x0, y0, x1, y1) boxes; 3D labels
    (D, H, W) give (x, y, z) points and (x0, y0, z0, x1, y1, z1) boxes, pixel indices of the
    label's grid (the head scales them to the network input).

    With ``seed=None`` ties and jitter are drawn from numpy's global generator (seeded by
    mmengine's ``randomness``): use it for training. With a ``seed`` they depend only on the
    seed, the sample (``img_path`` or ``case_id``, and ``slice_index``) and the click number,
    so evaluation is repeatable in any order and with any number of workers.

    Required keys: ``gt_seg_map`` (or ``gt_key``); ``img_path`` or ``case_id`` with a seed;
    optionally ``results[prediction_key]`` and ``spacing``.
    Added keys: ``prompt_points`` (N, 2|3) float32, ``prompt_point_labels`` (N,) int64 (1
    positive, 0 negative), ``prompt_box`` (4,|6,) float32 (``initial='box'``). Pack them with
    ``meta_keys`` of the pack transform.

    Args:
        initial (str): ``'box'`` or ``'point'``.
        box_jitter (int): largest random shift of each box coordinate, in pixels.
        target_class (int | None): the class to segment; None: all foreground.
        ignore_index (int): label value that is neither target nor background.
        prediction_key (str): the results key of the previous binary prediction.
        gt_key (str): the results key of the label map.
        use_spacing (bool): measure the depth of error regions with ``results['spacing']``
            (its last 2 or 3 values: (y, x) of a slice's (z, y, x)); False: in voxels.
        seed (int | None): see above.
        empty (str): target absent from the label: ``'error'`` stops with the file's name,
            ``'no_prompt'`` adds no box and no point (later clicks can only be negative).
    """

    def __init__(self, initial: str = 'box', box_jitter: int = 0,
                 target_class: Optional[int] = None, ignore_index: int = 255,
                 prediction_key: str = 'prev_pred_seg_map', gt_key: str = 'gt_seg_map',
                 use_spacing: bool = False, seed: Optional[int] = None,
                 empty: str = 'error') -> None:
        if initial not in INITIAL_PROMPTS:
            raise ValueError(f'ClickSimulator initial must be one of {INITIAL_PROMPTS}, got '
                             f'{initial!r}')
        if empty not in EMPTY_POLICIES:
            raise ValueError(f'ClickSimulator empty must be one of {EMPTY_POLICIES}, got '
                             f'{empty!r}')
        if int(box_jitter) != box_jitter or box_jitter < 0:
            raise ValueError(f'ClickSimulator box_jitter must be an int >= 0, got {box_jitter!r}')
        self.initial, self.box_jitter, self.empty = initial, int(box_jitter), empty
        self.target_class, self.ignore_index = target_class, ignore_index
        self.prediction_key, self.gt_key = prediction_key, gt_key
        self.use_spacing, self.seed = use_spacing, seed

    def _rng(self, results, step):
        if self.seed is None:  # a generator seeded from numpy's global (mmengine-seeded) state
            return np.random.default_rng(np.random.randint(2**31))
        sample = results.get('img_path', results.get('case_id'))
        if sample is None:
            raise KeyError('ClickSimulator with a seed needs img_path or case_id in the '
                           'results to key the draw to the sample')
        key = zlib.crc32(f'{sample}|{results.get("slice_index", "")}'.encode())
        return np.random.default_rng([self.seed, key, step])

    def _where(self, results):
        return results.get('img_path', results.get('case_id', 'this sample'))

    def _spacing(self, results, ndim):
        if not self.use_spacing:
            return None
        spacing = results.get('spacing')
        if spacing is None or len(spacing) < ndim:
            raise ValueError(f'{self._where(results)}: ClickSimulator(use_spacing=True) needs '
                             f'a spacing with {ndim} values, got {spacing!r}')
        return tuple(float(s) for s in spacing)[-ndim:]

    def _target(self, results):
        label = np.asarray(results[self.gt_key])
        if label.ndim not in (2, 3):
            raise ValueError(f'{self._where(results)}: ClickSimulator needs a 2D (H, W) or 3D '
                             f'(D, H, W) {self.gt_key}, got shape {label.shape}')
        valid = label != self.ignore_index
        target = (label != 0) & valid if self.target_class is None \
            else label == self.target_class
        return target, valid

    def transform(self, results: dict) -> dict:
        target, valid = self._target(results)
        spacing = self._spacing(results, target.ndim)
        points = results.get('prompt_points')
        if points is None:
            points = np.zeros((0, target.ndim), np.float32)
            labels = np.zeros(0, np.int64)
            rng = self._rng(results, 0)
            if not target.any():
                if self.empty == 'error':
                    raise ValueError(f'{self._where(results)}: the target (class '
                                     f'{self.target_class}) is absent from {self.gt_key}, so '
                                     "there is nothing to prompt; set empty='no_prompt' to "
                                     'go on without an initial prompt')
            elif self.initial == 'box':
                results['prompt_box'] = box_from_mask(target, self.box_jitter, rng)
            else:
                index, _, _ = largest_region_centre(target, rng, spacing)
                points = index_to_xyz(index)[None]
                labels = np.array([POSITIVE], np.int64)
        else:
            points = np.asarray(points, np.float32).reshape(-1, target.ndim)
            labels = np.asarray(results['prompt_point_labels'], np.int64).reshape(-1)
        previous = results.get(self.prediction_key)
        if previous is not None:
            previous = np.asarray(previous)
            if previous.shape != target.shape:
                raise ValueError(f'{self._where(results)}: {self.prediction_key} has shape '
                                 f'{previous.shape}, the label {target.shape}; give the '
                                 'previous prediction on the label grid')
            click = next_click(previous, target, self._rng(results, len(points) + 1), spacing,
                               valid)
            if click is not None:
                points = np.concatenate([points, click[0][None]])
                labels = np.append(labels, click[1])
        results['prompt_points'] = points.astype(np.float32)
        results['prompt_point_labels'] = labels.astype(np.int64)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(initial={self.initial!r}, '
                f'box_jitter={self.box_jitter}, target_class={self.target_class}, '
                f'seed={self.seed})')

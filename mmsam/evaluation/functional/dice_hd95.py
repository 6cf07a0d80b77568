"""Per-case Dice and 95% Hausdorff distance under the TransUNet/SAMed or nnU-Net convention."""
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage


def _surface(mask):
    """Voxels of ``mask`` with at least one face neighbour outside it (or on the array edge)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure)


def _crop_to_union(pred, gt):
    """Crop both masks to the bounding box of their union.

    Every surface voxel lies inside that box and erosion treats outside-the-array as
    background either way, so the surface distances do not change; the distance transforms
    just run on a much smaller array (an organ in a CT volume).
    """
    box = ndimage.find_objects((pred | gt).astype(np.uint8))[0]
    return pred[box], gt[box]


def hd95(pred: np.ndarray, gt: np.ndarray, spacing: Optional[Sequence[float]] = None) -> float:
    """95th percentile of the symmetric surface distances between two non-empty binary masks.

    Args:
        pred (ndarray): (H, W) or (D, H, W) bool mask, not empty.
        gt (ndarray): same shape as ``pred``, bool, not empty.
        spacing (sequence[float] | None): voxel size per axis; None measures in voxels.

    Returns:
        float: the 95th percentile (linear interpolation) of the distances from each surface
        voxel of one mask to the nearest surface voxel of the other, both directions pooled.
    """
    pred, gt = _crop_to_union(pred, gt)
    pred_surface, gt_surface = _surface(pred), _surface(gt)
    # EDT of the complement gives, at every voxel, the distance to the nearest surface voxel.
    to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    distances = np.concatenate([to_gt[pred_surface], to_pred[gt_surface]])
    return float(np.percentile(distances, 95))


CONVENTIONS = ('transunet', 'nnunet')


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f'convention={convention!r} is not one of {CONVENTIONS}; use '
                         f"'transunet' (TransUNet/SAMed protocol) or 'nnunet' (nnU-Net's)")


def dice_hd95(pred: np.ndarray, gt: np.ndarray, spacing: Optional[Sequence[float]] = None,
              convention: str = 'transunet', with_hd95: bool = True) -> Tuple[float, float]:
    """Dice and HD95 of one binary mask pair under an empty-mask convention.

    ``convention='transunet'`` (TransUNet's ``calculate_metric_percase``, reused by SAMed and
    its successors):

    - pred and gt both non-empty: (Dice, HD95);
    - pred non-empty, gt empty: (1, 0);
    - pred empty, whatever gt: (0, 0).

    ``convention='nnunet'`` (nnU-Net v2 ``compute_metrics_on_folder``):

    - Dice = 2TP / (2TP + FP + FN), NaN when TP + FP + FN = 0 (absent from both), so a false
      positive on a class missing from the gt scores 0 and so does a miss;
    - HD95 (nnU-Net reports none): NaN when either mask is empty, computed otherwise.

    Surface voxels are ``mask XOR binary_erosion(mask)`` with the face-connectivity structure;
    HD95 is the 95th percentile of both directions' surface-to-surface distances pooled.

    Args:
        pred (ndarray): (H, W) or (D, H, W) binary mask (bool or int; non-zero is foreground).
        gt (ndarray): same shape as ``pred``.
        spacing (sequence[float] | None): voxel size per axis, e.g. (z, y, x) in mm for a
            (D, H, W) volume; None measures HD95 in voxels, as the papers do.
        convention (str): 'transunet' or 'nnunet', see above.
        with_hd95 (bool): False skips the distance transforms and returns NaN for HD95
            (under both conventions).

    Returns:
        tuple[float, float]: Dice as a fraction in [0, 1] (or NaN), HD95 in voxels (or
        spacing units, or NaN).
    """
    _check_convention(convention)
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs {gt.shape}')
    if spacing is not None and len(spacing) != pred.ndim:
        raise ValueError(f'spacing {tuple(spacing)} has {len(spacing)} values for a '
                         f'{pred.ndim}D mask; give one value per axis')
    nan = float('nan')
    pred_any, gt_any = pred.any(), gt.any()
    if convention == 'transunet' and not (pred_any and gt_any):
        dice = 1.0 if pred_any else 0.0
        return dice, (0.0 if with_hd95 else nan)
    num_pred, num_gt = np.count_nonzero(pred), np.count_nonzero(gt)
    if num_pred + num_gt == 0:  # only reachable under nnunet
        return nan, nan
    dice = float(2.0 * np.count_nonzero(pred & gt) / (num_pred + num_gt))
    if not (with_hd95 and pred_any and gt_any):
        return dice, nan
    return dice, hd95(pred, gt, spacing)


def per_class_dice_hd95(pred_labels: np.ndarray, gt_labels: np.ndarray, num_classes: int,
                        spacing: Optional[Sequence[float]] = None, convention: str = 'transunet',
                        with_hd95: bool = True) -> np.ndarray:
    """Dice and HD95 of each foreground class of one case (see :func:`dice_hd95`).

    Args:
        pred_labels (ndarray): (H, W) or (D, H, W) int class ids, 0 = background.
        gt_labels (ndarray): same shape as ``pred_labels``.
        num_classes (int): number of classes, background included.
        spacing (sequence[float] | None): voxel size per axis; None measures in voxels.
        convention (str): 'transunet' or 'nnunet' empty-mask convention.
        with_hd95 (bool): False returns NaN HD95 without computing it.

    Returns:
        ndarray: (num_classes - 1, 2) float64; row c - 1 holds (Dice, HD95) of class c.
    """
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    return np.array([dice_hd95(pred_labels == c, gt_labels == c, spacing, convention, with_hd95)
                     for c in range(1, num_classes)], dtype=np.float64).reshape(-1, 2)

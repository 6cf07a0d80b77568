"""Per-case Dice and 95% Hausdorff distance of the TransUNet/SAMed evaluation protocol."""
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


def hd95(pred, gt, spacing=None):
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


def dice_hd95(pred, gt, spacing=None):
    """Dice and HD95 of one binary mask pair, with the TransUNet/SAMed empty-mask convention.

    Convention (TransUNet's ``calculate_metric_percase``, reused by SAMed and its successors):

    - pred and gt both non-empty: (Dice, HD95);
    - pred non-empty, gt empty: (1, 0);
    - pred empty, whatever gt: (0, 0).

    Surface voxels are ``mask XOR binary_erosion(mask)`` with the face-connectivity structure;
    HD95 is the 95th percentile of both directions' surface-to-surface distances pooled.

    Args:
        pred (ndarray): (H, W) or (D, H, W) binary mask (bool or int; non-zero is foreground).
        gt (ndarray): same shape as ``pred``.
        spacing (sequence[float] | None): voxel size per axis, e.g. (z, y, x) in mm for a
            (D, H, W) volume; None measures HD95 in voxels, as the papers do.

    Returns:
        tuple[float, float]: Dice as a fraction in [0, 1], HD95 in voxels (or spacing units).
    """
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt shapes differ: {pred.shape} vs {gt.shape}')
    if spacing is not None and len(spacing) != pred.ndim:
        raise ValueError(f'spacing {tuple(spacing)} has {len(spacing)} values for a '
                         f'{pred.ndim}D mask; give one value per axis')
    if not pred.any():
        return 0.0, 0.0
    if not gt.any():
        return 1.0, 0.0
    dice = 2.0 * np.count_nonzero(pred & gt) / (np.count_nonzero(pred) + np.count_nonzero(gt))
    return float(dice), hd95(pred, gt, spacing)


def per_class_dice_hd95(pred_labels, gt_labels, num_classes, spacing=None):
    """Dice and HD95 of each foreground class of one case (see :func:`dice_hd95`).

    Args:
        pred_labels (ndarray): (H, W) or (D, H, W) int class ids, 0 = background.
        gt_labels (ndarray): same shape as ``pred_labels``.
        num_classes (int): number of classes, background included.
        spacing (sequence[float] | None): voxel size per axis; None measures in voxels.

    Returns:
        ndarray: (num_classes - 1, 2) float64; row c - 1 holds (Dice, HD95) of class c.
    """
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    return np.array([dice_hd95(pred_labels == c, gt_labels == c, spacing)
                     for c in range(1, num_classes)], dtype=np.float64).reshape(-1, 2)

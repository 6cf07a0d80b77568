"""A volume's class scores resampled to the case's native grid, as nnU-Net exports predictions.

nnU-Net 2.5.1 (``convert_predicted_logits_to_segmentation_with_correct_shape`` with the default
plans' ``resampling_fn_probabilities``): the blended logits go through
``resample_data_or_seg_to_shape(..., is_seg=False, order=1, order_z=0,
force_separate_z=None)``; when either grid's largest / smallest spacing exceeds 3
(``ANISO_THRESHOLD``) and one axis alone is the coarse one, each slice is resized in-plane
(order 1) and the slices are then taken by nearest neighbour along that axis; otherwise the
volume is resized with order 1 in 3D. Softmax (the inference non-linearity) and argmax follow.
The resize is nnunetv2's own function (imported on use).
"""
import numpy as np
import torch
import torch.nn.functional as F

#: ways to bring scores to the native grid: nnU-Net's export (default) or mmsam's former
#: trilinear resize of probabilities (``torch.nn.functional.interpolate``).
NATIVE_RESAMPLING_MODES = ('nnunet', 'trilinear')


def native_spacing_of(shape, spacing, native_shape, native_spacing=None):
    """The native grid's spacing: the stored one, else derived from the shapes' ratio.

    Args:
        shape (Sequence[int]): (D, H, W) the grid the model ran on.
        spacing (Sequence[float] | None): its voxel size (z, y, x) in mm.
        native_shape (Sequence[int]): (D0, H0, W0).
        native_spacing (Sequence[float] | None): the stored native voxel size.

    Returns:
        tuple[float, float, float] | None: None when neither spacing is known.
    """
    if native_spacing is not None:
        return tuple(float(s) for s in native_spacing)
    if spacing is None:
        return None
    return tuple(float(s) * n / n0 for s, n, n0 in zip(spacing, shape, native_shape))


def resample_scores_to_native(scores, native_shape, spacing=None, native_spacing=None,
                              mode='nnunet'):
    """Resample (K, D, H, W) scores (logits or probabilities) to ``native_shape``.

    Args:
        scores (Tensor): (K, D, H, W) float scores on the model's grid.
        native_shape (Sequence[int]): (D0, H0, W0).
        spacing (Sequence[float] | None): (z, y, x) mm of the model's grid. None (unknown):
            no axis is treated as anisotropic (order 1 in 3D).
        native_spacing (Sequence[float] | None): (z, y, x) mm of the native grid; None: derived
            from ``spacing`` and the shapes (:func:`native_spacing_of`).
        mode (str): ``'nnunet'`` (nnU-Net's export resampling) or ``'trilinear'``.

    Returns:
        Tensor: (K, D0, H0, W0) float32 on ``scores``' device (``scores`` itself when the
        shapes already match).
    """
    if mode not in NATIVE_RESAMPLING_MODES:
        raise ValueError(f'test_cfg.native_resampling must be one of {NATIVE_RESAMPLING_MODES}, '
                         f'got {mode!r}')
    native_shape = tuple(int(s) for s in native_shape)
    if tuple(scores.shape[1:]) == native_shape:
        return scores
    if mode == 'trilinear':
        return F.interpolate(scores[None].float(), size=native_shape, mode='trilinear',
                             align_corners=False)[0]
    from nnunetv2.preprocessing.resampling.default_resampling import \
        resample_data_or_seg_to_shape
    if spacing is None:
        # unknown geometry: no axis to single out as anisotropic (the spacings are then unread)
        spacing = native_spacing = (1.0, 1.0, 1.0)
        force_separate_z = False
    else:
        native_spacing = native_spacing_of(scores.shape[1:], spacing, native_shape,
                                           native_spacing)
        force_separate_z = None  # nnU-Net's default: decided from the two spacings
    resampled = resample_data_or_seg_to_shape(
        scores.detach().float().cpu().numpy(), native_shape, tuple(float(s) for s in spacing),
        native_spacing, is_seg=False, order=1, order_z=0, force_separate_z=force_separate_z)
    return torch.from_numpy(np.ascontiguousarray(resampled, dtype=np.float32)).to(scores.device)


def labels_on_native_grid(scores, native_shape, spacing=None, native_spacing=None,
                          mode='nnunet', probabilities=False):
    """Class ids on the native grid from blended scores, as nnU-Net's export makes them.

    Resample (:func:`resample_scores_to_native`), then softmax (skipped for probabilities)
    and argmax, as ``convert_predicted_logits_to_segmentation_with_correct_shape``.

    Args:
        scores (Tensor): (K, D, H, W) blended logits (or probabilities).
        native_shape, spacing, native_spacing, mode: see :func:`resample_scores_to_native`.
        probabilities (bool): ``scores`` are probabilities already (no softmax).

    Returns:
        Tensor: (D0, H0, W0) long class ids.
    """
    scores = resample_scores_to_native(scores, native_shape, spacing, native_spacing, mode)
    if not probabilities:
        scores = scores.float().softmax(dim=0)  # nnU-Net's inference non-linearity
    return scores.argmax(dim=0)

"""Volumes of a converted case: the target spacing of a set of NIfTI cases, and resampling a
case to it while keeping its native grid for evaluation."""
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from mmsam.datasets.io.nifti import read_nifti_geometry
from .errors import ConversionError, redo_advice
from .nnunet_preprocessing import nnunet_target_spacing, resample_volume


def nifti_target_spacing(image_paths: Iterable[str],
                         error: type = ConversionError) -> Tuple[float, float, float]:
    """nnU-Net's target spacing of NIfTI volumes, from their headers alone (no voxel read).

    Args:
        image_paths (iterable[str]): the cases' image files (the training cases).
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        tuple[float, float, float]: the target spacing (z, y, x) mm.
    """
    advice = redo_advice(error)
    shapes, spacings = zip(*(read_nifti_geometry(path, error, advice) for path in image_paths))
    return nnunet_target_spacing(spacings, shapes)


def resample_case(image: np.ndarray, label: np.ndarray, spacing: Sequence[float],
                  target_spacing: Optional[Sequence[float]], keep_native: bool = True):
    """Resample a case to ``target_spacing`` (nnU-Net's rule), keeping its native label grid.

    Args:
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) class ids.
        spacing (sequence[float]): (z, y, x) mm of the arrays.
        target_spacing (sequence[float] | None): (z, y, x) mm; None keeps the case as it is.
        keep_native (bool): return the native ``label`` and ``spacing`` (for evaluation on
            the original grid, :func:`mmsam.datasets.io.npz.save_case_volume`).

    Returns:
        tuple: ``image``, ``label``, ``spacing`` and ``native`` (dict or None).
    """
    if target_spacing is None:
        return image, label, spacing, None
    native = dict(label=label, spacing=spacing) if keep_native else None
    image, label = resample_volume(image, label, spacing, target_spacing)
    return image, label, target_spacing, native

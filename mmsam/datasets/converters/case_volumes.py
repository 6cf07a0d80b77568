"""Volumes of a converted case: the target spacing of a set of NIfTI cases, the CT foreground
draws of the training cases, and resampling a case to the target spacing while keeping its native
grid for evaluation."""
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmsam.datasets.io.nifti import read_nifti_geometry
from .errors import ConversionError, redo_advice
from .nnunet_preprocessing import (FOREGROUND_SAMPLE_BUDGET, nnunet_target_spacing,
                                   resample_volume, sample_foreground)


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


def sample_cases_foreground(cases: Iterable[Tuple[np.ndarray, np.ndarray]],
                            num_cases: int) -> List[np.ndarray]:
    """nnU-Net's fingerprint draws of the training cases' labelled voxels, one case at a time.

    The statistics pass that precedes resampling (nnU-Net's fingerprint samples the cases at
    their native resolution, before its preprocessor clips and resamples): ``cases`` may be a
    generator that reads each case, so only one case is in memory at a time.

    Args:
        cases (iterable[tuple[ndarray, ndarray]]): (image (D, H, W), label (D, H, W)) of each
            training case, at native resolution.
        num_cases (int): the number of training cases, which share nnU-Net's sample budget.

    Returns:
        list[ndarray]: each case's ``FOREGROUND_SAMPLE_BUDGET // num_cases`` draws (float32),
        for :func:`.nnunet_preprocessing.foreground_stats`.
    """
    budget = FOREGROUND_SAMPLE_BUDGET // max(1, num_cases)
    return [sample_foreground(image, label, budget) for image, label in cases]


def resample_case(image: np.ndarray, label: np.ndarray, spacing: Sequence[float],
                  target_spacing: Optional[Sequence[float]], keep_native: bool = True,
                  clip_range: Optional[Tuple[float, float]] = None):
    """Resample a case to ``target_spacing`` (nnU-Net's rule), keeping its native label grid.

    Args:
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) class ids.
        spacing (sequence[float]): (z, y, x) mm of the arrays.
        target_spacing (sequence[float] | None): (z, y, x) mm; None keeps the case as it is.
        keep_native (bool): return the native ``label`` and ``spacing`` (for evaluation on
            the original grid, :func:`mmsam.datasets.io.npz.save_case_volume`).
        clip_range (tuple[float, float] | None): CT window clipped to before resampling
            (:func:`.nnunet_preprocessing.ct_clip_range` of the training cases' statistics);
            None: no clipping. Ignored without ``target_spacing`` (the case is kept as it is).

    Returns:
        tuple: ``image``, ``label``, ``spacing`` and ``native`` (dict or None).
    """
    if target_spacing is None:
        return image, label, spacing, None
    native = dict(label=label, spacing=spacing) if keep_native else None
    image, label = resample_volume(image, label, spacing, target_spacing, clip_range)
    return image, label, target_spacing, native

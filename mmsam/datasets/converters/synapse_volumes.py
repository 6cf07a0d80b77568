"""Synapse volumes for 3D methods: raw HU with CT foreground statistics, and resampling to
nnU-Net's target spacing (the raw BTCV release only; TransUNet's has no spacing).

* ``--intensity hu`` keeps raw HU as float32 and samples each training case's labelled voxels
  for nnU-Net's CT statistics
  (:func:`mmsam.datasets.converters.nnunet_preprocessing.foreground_stats`).
* ``--target-spacing auto`` resamples every case to nnU-Net's target spacing of the training
  cases (median, 10th percentile along an anisotropic z), ``Z,Y,X`` to a given one, with
  :func:`mmsam.datasets.converters.nnunet_preprocessing.resample_volume`; training slices are
  cut from the resampled volumes, and test volumes keep their native label and grid
  (``native_label``, ``native_spacing``, ``native_shape``) for evaluation on the original grid.
  With ``--intensity hu`` every case is clipped to the training cases' foreground [0.5, 99.5]
  percentiles before it is resampled (nnU-Net's order; the values stay HU), so the statistics
  come from a first pass over the training cases at native resolution (each read twice).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .case_volumes import resample_case
from .name_lists import slice_names
from .nnunet_preprocessing import (FOREGROUND_SAMPLE_BUDGET, nnunet_target_spacing,
                                   resampled_shape, sample_foreground)
from .synapse_common import HU_WINDOW, SynapseConversionError

Header = Tuple[Tuple[int, int, int], Tuple[float, float, float]]


def window_hu(hu: np.ndarray, window: Tuple[float, float] = HU_WINDOW) -> np.ndarray:
    """Clip CT intensities to a HU window and rescale it linearly to [0, 1].

    Args:
        hu (ndarray): (...) intensities in Hounsfield units.
        window (tuple[float, float]): (low, high) HU mapped to 0 and 1.

    Returns:
        ndarray: (...) float32 in [0, 1].
    """
    low, high = window
    hu = np.clip(np.asarray(hu, dtype=np.float32), low, high)
    return ((hu - np.float32(low)) / np.float32(high - low)).astype(np.float32)


def auto_target_spacing(headers: Dict[str, Header], where: str) -> Tuple[float, float, float]:
    """nnU-Net's target spacing of the training cases, from their headers alone.

    Args:
        headers (dict[str, tuple]): training case -> (shape (D, H, W), spacing (z, y, x)).
        where (str): the folder of the cases, named in the error.

    Returns:
        tuple[float, float, float]: the target spacing (z, y, x) mm.
    """
    if not headers:
        raise SynapseConversionError(f'{where} has no training case to compute '
                                     '--target-spacing auto from')
    shapes, spacings = zip(*headers.values())
    return nnunet_target_spacing(spacings, shapes)


def plan_train_slices(headers: Dict[str, Header],
                      target_spacing: Optional[Sequence[float]]) -> Dict[str, List[str]]:
    """Name each training case's slices from its depth after resampling (if any).

    Args:
        headers (dict[str, tuple]): training case -> (shape (D, H, W), spacing (z, y, x)).
        target_spacing (sequence[float] | None): (z, y, x) mm, or None to keep the grid.

    Returns:
        dict[str, list[str]]: case -> its slice names, in slice order.
    """
    plan = {}
    for case, (shape, spacing) in headers.items():
        if target_spacing is not None:
            shape = resampled_shape(shape, spacing, target_spacing)
        plan[case] = slice_names(case, shape[0])
    return plan


def prepare_volume(image: np.ndarray, label: np.ndarray, spacing: Sequence[float],
                   target_spacing: Optional[Sequence[float]], intensity: str,
                   fg_samples: Optional[list] = None, num_train_cases: int = 1,
                   clip_range: Optional[Tuple[float, float]] = None):
    """A case as stored: its foreground sampled (HU), resampled if asked, windowed or HU.

    ``'window'`` windows after resampling (TransUNet's order; nnU-Net has no window mode);
    ``'hu'`` with a target spacing is clipped to ``clip_range`` before resampling (nnU-Net's
    CTNormalization order), which needs the training cases' statistics before the first case
    is resampled: :meth:`.synapse_btcv.BTCVSource.ct_clip_range`'s statistics pass.

    Args:
        image (ndarray): (D, H, W) raw HU.
        label (ndarray): (D, H, W) class ids.
        spacing (sequence[float]): (z, y, x) mm of the arrays.
        target_spacing (sequence[float] | None): (z, y, x) mm to resample to, or None.
        intensity (str): ``'window'`` (TransUNet's [0, 1]) or ``'hu'``.
        fg_samples (list | None): a training case's labelled-voxel HU are appended here when
            ``intensity == 'hu'`` (None for test cases).
        num_train_cases (int): the training cases sharing nnU-Net's sample budget.
        clip_range (tuple[float, float] | None): CT window clipped to before resampling
            (``'hu'`` only; None: not clipped).

    Returns:
        tuple: ``image`` (D', H', W') float32, ``label`` (D', H', W') uint8 ids, ``spacing``
        and ``native`` (dict with the original ``label`` and ``spacing``, or None when not
        resampled).
    """
    if fg_samples is not None and intensity == 'hu':
        budget = FOREGROUND_SAMPLE_BUDGET // num_train_cases
        fg_samples.append(sample_foreground(image, label, budget))
    if intensity != 'hu' and clip_range is not None:
        raise SynapseConversionError(f'clip_range is for --intensity hu, not {intensity!r}')
    image, label, spacing, native = resample_case(image, label, spacing, target_spacing,
                                                  clip_range=clip_range)
    if intensity == 'window':
        image = window_hu(image)
    return image, label, spacing, native

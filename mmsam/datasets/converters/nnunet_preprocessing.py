"""nnU-Net's preprocessing rules: target spacing, resampling, CT foreground statistics.

The dataset converters use these to prepare volumes the way nnU-Net's ExperimentPlanner and
preprocessor do: :func:`nnunet_target_spacing` picks a dataset's full-resolution spacing,
:func:`resample_volume` brings a case to it, and :func:`sample_foreground` /
:func:`foreground_stats` give the statistics of nnU-Net's CT normalisation.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .errors import ConversionError

ANISOTROPY_THRESHOLD = 3.0  # nnU-Net's ANISO_THRESHOLD
# nnU-Net's fingerprint samples 10e7 foreground voxels in all, split evenly over the cases
FOREGROUND_SAMPLE_BUDGET = 10 ** 8


def nnunet_target_spacing(spacings: Sequence, shapes: Optional[Sequence] = None,
                          threshold: float = ANISOTROPY_THRESHOLD
                          ) -> Tuple[float, float, float]:
    """nnU-Net's full-resolution target spacing of a dataset (its ExperimentPlanner rule).

    The target is the median spacing per axis. When its coarsest axis is more than
    ``threshold`` times coarser than the next coarsest (and, if ``shapes`` are given, the median
    size along it times ``threshold`` is below the other median sizes), that axis gets the 10th
    percentile of its spacings instead, but not finer than the other axes.

    Args:
        spacings (sequence): (N, 3) spacings (z, y, x) of the cases, mm.
        shapes (sequence | None): (N, 3) shapes (D, H, W) of the cases.
        threshold (float): anisotropy threshold.

    Returns:
        tuple[float, float, float]: the target spacing (z, y, x).
    """
    spacings = np.asarray(spacings, dtype=np.float64).reshape(-1, 3)
    target = np.percentile(spacings, 50, axis=0)
    worst = int(np.argmax(target))
    others = [i for i in range(3) if i != worst]
    aniso = target[worst] > threshold * max(target[others])
    if shapes is not None:
        sizes = np.percentile(np.asarray(shapes, dtype=np.float64).reshape(-1, 3), 50, axis=0)
        aniso = aniso and sizes[worst] * threshold < min(sizes[others])
    if aniso:
        low = np.percentile(spacings[:, worst], 10)
        if low < max(target[others]):
            low = max(max(target[others]), low) + 1e-5
        target[worst] = low
    return tuple(float(s) for s in target)


def resampled_shape(shape: Sequence[int], spacing: Sequence[float],
                    target_spacing: Sequence[float]) -> Tuple[int, ...]:
    """Shape of a volume resampled from ``spacing`` to ``target_spacing`` (nnU-Net's rounding)."""
    return tuple(max(1, int(round(s / t * n)))
                 for n, s, t in zip(shape, spacing, target_spacing))


def _separate_axis(spacing: Sequence[float], target_spacing: Sequence[float],
                   threshold: float = ANISOTROPY_THRESHOLD) -> Optional[int]:
    """The low-resolution axis to resample on its own (nnU-Net's ``do_separate_z``), or None."""
    for sp in (np.asarray(spacing, float), np.asarray(target_spacing, float)):
        if sp.max() / sp.min() > threshold:
            axes = np.flatnonzero(sp == sp.max())
            return int(axes[0]) if len(axes) == 1 else None
    return None


def _zoom(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """Resize ``array`` to ``shape``: scipy spline of ``order`` on pixel centres, edge mode."""
    from scipy import ndimage
    if tuple(array.shape) == tuple(shape):
        return array
    factors = [n / o for n, o in zip(shape, array.shape)]
    out = ndimage.zoom(array, factors, order=order, mode='nearest', grid_mode=True,
                       output=np.float32)
    assert out.shape == tuple(shape), (out.shape, shape)
    return out


def _resample(volume: np.ndarray, shape: Sequence[int], order: int,
              axis: Optional[int]) -> np.ndarray:
    """Resize with ``order``; with ``axis``, in-plane per slice then nearest along ``axis``."""
    if axis is None:
        return _zoom(volume, shape, order)
    moved = np.moveaxis(volume, axis, 0)
    plane = tuple(n for i, n in enumerate(shape) if i != axis)
    moved = np.stack([_zoom(s, plane, order) for s in moved])
    moved = _zoom(moved, (shape[axis], ) + plane, 0)
    return np.moveaxis(moved, 0, axis)


def resample_volume(image: np.ndarray, label: np.ndarray, spacing: Sequence[float],
                    target_spacing: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Resample an image and its label map to ``target_spacing`` the way nnU-Net does.

    The new shape is ``round(shape * spacing / target_spacing)``. Image: cubic spline (order 3).
    Labels: each class one-hot, linear (order 1), then the argmax. When the source or target
    spacing is anisotropic (max / min > 3, a single coarsest axis), both are resampled in-plane
    slice by slice and with nearest neighbour (order 0) along that axis.

    Args:
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) integer class ids.
        spacing (sequence[float]): (z, y, x) spacing of the arrays, mm.
        target_spacing (sequence[float]): (z, y, x) spacing to resample to, mm.

    Returns:
        tuple[ndarray, ndarray]: image (D', H', W') float32 and label (D', H', W') uint8.
    """
    image = np.asarray(image, dtype=np.float32)
    label = np.asarray(label)
    shape = resampled_shape(image.shape, spacing, target_spacing)
    if shape == image.shape:
        return image, label.astype(np.uint8)
    axis = _separate_axis(spacing, target_spacing)
    new_image = _resample(image, shape, 3, axis)
    new_label = np.zeros(shape, dtype=np.uint8)
    best = np.full(shape, -np.inf, dtype=np.float32)
    for c in np.unique(label):  # ascending, strict '>': ties go to the lower id, as argmax
        prob = _resample((label == c).astype(np.float32), shape, 1, axis)
        better = prob > best
        new_label[better], best[better] = c, prob[better]
    return new_image, new_label


TargetSpacing = Union[None, str, Tuple[float, float, float]]


def parse_target_spacing(value: Union[None, str, Sequence[float]],
                         error: type = ConversionError) -> TargetSpacing:
    """Read a ``--target-spacing`` value: ``None``/``'none'``, ``'auto'`` or ``'z,y,x'``.

    Args:
        value (None | str | sequence[float]): the option's value.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        None | str | tuple[float, float, float]: None, ``'auto'`` or the spacing.
    """
    if value is None or (isinstance(value, str) and value.lower() == 'none'):
        return None
    if isinstance(value, str) and value.lower() == 'auto':
        return 'auto'
    try:
        parts = value.split(',') if isinstance(value, str) else list(value)
        spacing = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        spacing = ()
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise error(f'target spacing {value!r}: use none, auto, or three positive numbers z,y,x '
                    '(mm), e.g. 3,0.8,0.8')
    return spacing


def sample_foreground(image: np.ndarray, label: np.ndarray, max_voxels: Optional[int] = None,
                      seed: int = 1234) -> np.ndarray:
    """Intensities of the labelled (> 0) voxels of a case, at most ``max_voxels`` of them.

    Args:
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) class ids.
        max_voxels (int | None): keep a seeded random subset of this size when there are more.
        seed (int): seed of the subset (nnU-Net seeds each case with 1234).

    Returns:
        ndarray: (M,) float32 intensities.
    """
    values = np.asarray(image)[np.asarray(label) > 0]
    if max_voxels is not None and values.size > max_voxels:
        values = np.random.RandomState(seed).choice(values, max_voxels, replace=False)
    return values.astype(np.float32)


def foreground_stats(samples: Sequence[np.ndarray], what: str = 'the training cases',
                     error: type = ConversionError) -> dict:
    """nnU-Net's CT normalisation statistics of foreground intensities.

    Args:
        samples (list[ndarray]): per-case foreground intensities (:func:`sample_foreground`).
        what (str): what the samples come from, for the error.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        dict: ``mean``, ``std`` (population), ``percentile_00_5``, ``percentile_99_5``.
    """
    values = np.concatenate([np.ravel(s) for s in samples] or [np.zeros(0)]).astype(np.float64)
    if not values.size:
        raise error(f'{what} have no labelled voxels, so CT foreground statistics cannot be '
                    'computed; check the label files')
    return dict(mean=float(values.mean()), std=float(values.std()),
                percentile_00_5=float(np.percentile(values, 0.5)),
                percentile_99_5=float(np.percentile(values, 99.5)))

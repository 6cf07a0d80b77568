"""nnU-Net's preprocessing rules: target spacing, resampling, CT foreground statistics.

The dataset converters use these to prepare volumes the way nnU-Net 2.5.1's ExperimentPlanner,
fingerprint extractor and DefaultPreprocessor do: :func:`nnunet_target_spacing` picks a
dataset's full-resolution spacing, :func:`resample_volume` brings a case to it (nnunetv2's own
``resample_data_or_seg_to_shape``, imported on use; CT clipped to the foreground percentiles
first, nnU-Net's normalise-then-resample order), and :func:`sample_foreground` /
:func:`foreground_stats` give the statistics of nnU-Net's CT normalisation (each case
contributes the same number of draws, as in nnU-Net's fingerprint).
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
    """Shape of a volume resampled from ``spacing`` to ``target_spacing`` (nnU-Net's rounding,
    ``round(shape * spacing / target_spacing)``; at least 1 voxel per axis)."""
    return tuple(max(1, int(round(s / t * n)))
                 for n, s, t in zip(shape, spacing, target_spacing))


def ct_clip_range(stats: dict) -> Tuple[float, float]:
    """The (``percentile_00_5``, ``percentile_99_5``) window of CT statistics
    (:func:`foreground_stats`), which nnU-Net's CTNormalization clips to."""
    return float(stats['percentile_00_5']), float(stats['percentile_99_5'])


def resample_image(image: np.ndarray, spacing: Sequence[float],
                   target_spacing: Sequence[float],
                   clip_range: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """Resample an image to ``target_spacing`` as nnU-Net's preprocessor resamples its data.

    nnunetv2's ``resample_data_or_seg_to_shape(is_seg=False, order=3, order_z=0,
    force_separate_z=None)``, the default plans' data resampling (see :func:`resample_volume`).

    Args:
        image (ndarray): (D, H, W) intensities.
        spacing (sequence[float]): (z, y, x) spacing of the array, mm.
        target_spacing (sequence[float]): (z, y, x) spacing to resample to, mm.
        clip_range (tuple[float, float] | None): clipped to before resampling (CT).

    Returns:
        ndarray: (D', H', W') float32.
    """
    image = np.asarray(image, dtype=np.float32)
    if clip_range is not None:
        image = np.clip(image, np.float32(clip_range[0]), np.float32(clip_range[1]))
    shape = resampled_shape(image.shape, spacing, target_spacing)
    if shape == image.shape:
        return image
    from nnunetv2.preprocessing.resampling.default_resampling import \
        resample_data_or_seg_to_shape
    resampled = resample_data_or_seg_to_shape(
        image[None], shape, [float(s) for s in spacing], [float(s) for s in target_spacing],
        is_seg=False, order=3, order_z=0, force_separate_z=None)[0]
    return resampled.astype(np.float32, copy=False)


def resample_volume(image: np.ndarray, label: np.ndarray, spacing: Sequence[float],
                    target_spacing: Sequence[float],
                    clip_range: Optional[Tuple[float, float]] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Resample an image and its label map to ``target_spacing`` as nnU-Net's preprocessor does.

    nnunetv2's ``resample_data_or_seg_to_shape`` with its default plans: the new shape is
    ``round(shape * spacing / target_spacing)``; the image is resized with a cubic spline
    (order 3, edge mode, clipped to its input range as skimage's resize does), the labels class
    by class (order-1 indicators, then the per-voxel winner: batchgenerators'
    ``resize_segmentation``). When the source or target spacing is anisotropic (max / min > 3,
    one coarsest axis) both are resized in-plane slice by slice and by nearest neighbour along
    that axis.

    ``clip_range`` reproduces nnU-Net's order for CT, which clips and z-scores before
    resampling: the clip is applied here, before resampling, and the z-score (affine, so it
    commutes with the resize) stays with ``NormalizeIntensity3D`` at load time; the stored image
    stays in HU.

    Args:
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) integer class ids.
        spacing (sequence[float]): (z, y, x) spacing of the arrays, mm.
        target_spacing (sequence[float]): (z, y, x) spacing to resample to, mm.
        clip_range (tuple[float, float] | None): CT window (:func:`ct_clip_range` of the
            dataset's foreground statistics) clipped to before resampling; None: no clipping.

    Returns:
        tuple[ndarray, ndarray]: image (D', H', W') float32 and label (D', H', W') uint8.
    """
    label = np.asarray(label)
    new_image = resample_image(image, spacing, target_spacing, clip_range)
    if new_image.shape == label.shape:
        return new_image, label.astype(np.uint8)
    from nnunetv2.preprocessing.resampling.default_resampling import \
        resample_data_or_seg_to_shape
    new_label = resample_data_or_seg_to_shape(
        label.astype(np.int16)[None], new_image.shape, [float(s) for s in spacing],
        [float(s) for s in target_spacing], is_seg=True, order=1, order_z=0,
        force_separate_z=None)[0]
    return new_image, new_label.astype(np.uint8)


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
    """Intensities of a case's labelled (> 0) voxels, as nnU-Net's fingerprint draws them.

    nnU-Net (``collect_foreground_intensities``) draws exactly ``num_samples`` of them with
    replacement (``np.random.RandomState(1234).choice``) from every case, so each case weighs
    the same in the dataset's statistics, however large its foreground.

    Args:
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) class ids.
        max_voxels (int | None): the number of draws (the converters pass nnU-Net's
            ``FOREGROUND_SAMPLE_BUDGET // number of cases``); None: every labelled voxel once.
        seed (int): the draws' seed (nnU-Net seeds each case with 1234).

    Returns:
        ndarray: (max_voxels,) float32 intensities ((M,) with None; empty without foreground).
    """
    values = np.asarray(image)[np.asarray(label) > 0]
    if max_voxels is not None and values.size:
        values = np.random.RandomState(seed).choice(values, int(max_voxels), replace=True)
    return values.astype(np.float32)


def foreground_stats(samples: Sequence[np.ndarray], what: str = 'the training cases',
                     error: type = ConversionError) -> dict:
    """nnU-Net's CT normalisation statistics of foreground intensities.

    Args:
        samples (list[ndarray]): per-case foreground intensities (:func:`sample_foreground`).
        what (str): what the samples come from, for the error.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        dict: ``mean``, ``std`` (population), ``percentile_00_5``, ``percentile_99_5``, computed
        as nnU-Net's fingerprint does (numpy on the float32 draws of all cases together).
    """
    values = np.concatenate([np.ravel(s) for s in samples] or [np.zeros(0)]).astype(np.float32)
    if not values.size:
        raise error(f'{what} have no labelled voxels, so CT foreground statistics cannot be '
                    'computed; check the label files')
    low, high = np.percentile(values, (0.5, 99.5))
    return dict(mean=float(np.mean(values)), std=float(np.std(values)),
                percentile_00_5=float(low), percentile_99_5=float(high))

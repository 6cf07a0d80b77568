"""Intensity presets: a scan's stored values (HU, MR units) -> what a model was trained on.

mmsam's converters store 2D training data in [0, 1] (Synapse: TransUNet's HU window; PROMISE12:
per-volume percentiles; LA, LIDC: per-volume min-max), and 3D data as HU or raw MR values that
the config's test pipeline normalises (``NormalizeIntensity3D``). A raw scan must go through
the same step before the model sees it. Presets:

* ``window``: clip to (low, high) HU, rescale to [0, 1] (Synapse's ``window_hu``).
* ``percentile``: clip to the volume's 0.5th / 99.5th percentiles, rescale to [0, 1].
* ``minmax``: the volume's min-max to [0, 1].
* ``unit``: already in [0, 1]; clipped.
* ``raw``: unchanged (3D models whose test pipeline normalises, CT statistics or z-score).
"""
from typing import Optional, Tuple

import numpy as np
from mmengine.config import Config

from mmsam.registry import DATASETS

PRESETS = ('window', 'percentile', 'minmax', 'unit', 'raw')
#: TransUNet's Synapse window, as tools/dataset_converters/synapse.py applies it.
SYNAPSE_HU_WINDOW = (-125.0, 275.0)
# What each data set's converter did to the scans (tools/dataset_converters/*.py).
DATASET_PRESETS = {
    'SynapseDataset': ('window', SYNAPSE_HU_WINDOW),
    'SyntheticAbdomenDataset': ('window', SYNAPSE_HU_WINDOW),  # a soft-tissue window to [0, 1]
    'PROMISE12Dataset': ('percentile', None),
    'LADataset': ('minmax', None),
    'LIDCDataset': ('minmax', None),
    'QUBIQKidneyDataset': ('minmax', None),
    'SyntheticLesionDataset': ('minmax', None),
}
# meta.json 'intensity' of 3D data -> preset before the test pipeline's own normalisation
META_3D_PRESETS = {'hu': 'raw', 'zscore': 'raw', 'mr': 'raw'}


def apply_intensity(volume: np.ndarray, preset: str,
                    window: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """Map stored intensities with a preset.

    Args:
        volume (ndarray): (D, H, W) (or (H, W)) stored values.
        preset (str): one of :data:`PRESETS`.
        window (tuple[float, float], optional): (low, high) of ``'window'``.

    Returns:
        ndarray: float32 of the same shape; in [0, 1] except for ``'raw'``.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if preset == 'raw':
        return volume.copy()
    if preset == 'unit':
        return np.clip(volume, 0.0, 1.0)
    if preset == 'window':
        low, high = SYNAPSE_HU_WINDOW if window is None else window
        if not high > low:
            raise ValueError(f'intensity window ({low:g}, {high:g}): need low < high')
        clipped = np.clip(volume, np.float32(low), np.float32(high))
        return ((clipped - np.float32(low)) / np.float32(high - low)).astype(np.float32)
    if preset in ('percentile', 'minmax'):
        if preset == 'percentile':
            low, high = (float(v) for v in np.percentile(volume, (0.5, 99.5)))
        else:
            low, high = float(volume.min()), float(volume.max())
        if high <= low:
            return np.zeros_like(volume)
        return ((np.clip(volume, low, high) - low) / (high - low)).astype(np.float32)
    raise ValueError(f'unknown intensity preset {preset!r}; use one of {PRESETS}')


def resolve_intensity(cfg: Config, meta: dict, volume_model: bool, preset: str = 'auto',
                      window: Optional[Tuple[float, float]] = None) -> Tuple[str, Optional[tuple]]:
    """The preset (and window) for raw scans given to the model of ``cfg``.

    ``'auto'`` reads the training data's ``meta.json`` (``hu_window``; 3D: ``intensity``), then
    the config's test dataset type (:data:`DATASET_PRESETS`).

    Args:
        cfg (Config): the model's config.
        meta (dict): the training data's ``meta.json`` ({} when not found).
        volume_model (bool): a 3D ``VolumeSAMSegmentor``.
        preset (str): ``'auto'`` or one of :data:`PRESETS`.
        window (tuple[float, float], optional): overrides the window of ``'window'``.

    Returns:
        tuple[str, tuple | None]: the preset and its window.

    Raises:
        ValueError: ``'auto'`` cannot tell; the message says which option to give.
    """
    if preset != 'auto':
        if preset not in PRESETS:
            raise ValueError(f'--intensity {preset}: use auto or one of {", ".join(PRESETS)}')
        if preset == 'window' and window is None:
            window = tuple(meta.get('hu_window') or SYNAPSE_HU_WINDOW)
        return preset, (tuple(window) if preset == 'window' else None)
    if meta.get('hu_window'):
        return 'window', tuple(window or meta['hu_window'])
    if volume_model and meta.get('intensity') in META_3D_PRESETS:
        return META_3D_PRESETS[meta['intensity']], None
    dataset = cfg.get('test_dataloader', {}).get('dataset', {}).get('type')
    name = dataset if isinstance(dataset, str) else getattr(dataset, '__name__', None)
    if name == 'SyntheticAbdomenVolumeDataset' or name in DATASET_PRESETS:
        found, default_window = DATASET_PRESETS.get(name, ('window', SYNAPSE_HU_WINDOW))
        return found, (tuple(window or default_window) if found == 'window' else None)
    known = name is not None and DATASETS.get(name) is not None
    raise ValueError(
        f'cannot tell how the training data of {name or "this config"} were normalised'
        f'{"" if known else " (unknown dataset type)"} and its meta.json (the test data root) '
        f'has neither hu_window nor intensity: give --intensity {"|".join(PRESETS)} '
        '(and --window LOW HIGH for a CT window)')

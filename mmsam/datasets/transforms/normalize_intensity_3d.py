"""nnU-Net's intensity normalisation of a volume: CT foreground statistics or per-volume z-score."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS

CT_KEYS = ('mean', 'std', 'percentile_00_5', 'percentile_99_5')


@TRANSFORMS.register_module()
class NormalizeIntensity3D(BaseTransform):
    """Normalise ``results['img']`` as nnU-Net does, per channel of a (D, H, W) volume.

    * ``'ct'``: clip to [``percentile_00_5``, ``percentile_99_5``] of the training cases'
      labelled voxels, then (x - mean) / max(std, 1e-8) with their mean and std
      (``results['intensity_properties']``, i.e. ``meta.json``'s ``ct_foreground``, which the
      converters write with ``--intensity hu``).
    * ``'zscore'``: (x - mean) / max(std, 1e-8) with this volume's own mean and std.
    * ``'none'``: unchanged (float32).

    Place it before ``RandomPatchCrop3D``: the z-score statistics are those of the whole
    volume, and padded voxels then hold 0 in the normalised space, as in nnU-Net.

    Required keys: ``img``; ``intensity_properties`` for ``'ct'``.
    Modified keys: ``img`` (float32).

    Args:
        mode (str): ``'ct'``, ``'zscore'`` or ``'none'``.
        clip (bool): clip to the percentiles in ``'ct'`` mode. Default: True.
    """

    def __init__(self, mode='ct', clip=True):
        if mode not in ('ct', 'zscore', 'none'):
            raise ValueError(f"NormalizeIntensity3D mode must be 'ct', 'zscore' or 'none', "
                             f'got {mode!r}')
        self.mode = mode
        self.clip = bool(clip)

    def _ct_stats(self, results):
        stats = results.get('intensity_properties')
        where = results.get('img_path', 'the data')
        if not isinstance(stats, dict):
            raise ValueError(
                f"NormalizeIntensity3D(mode='ct') needs CT foreground statistics, but {where} "
                f"has none (results['intensity_properties'] is {stats!r}, from the data root's "
                f"meta.json key 'ct_foreground'; intensity={results.get('intensity')!r}). "
                'Convert the CT data with --intensity hu (which keeps HU and writes them), or '
                "use mode='zscore' / 'none' for MR or already windowed data.")
        missing = [k for k in CT_KEYS if k not in stats]
        if missing:
            raise ValueError(f"meta.json 'ct_foreground' of {where} lacks {missing}; it needs "
                             f'{list(CT_KEYS)}: re-run the converter with --intensity hu')
        return {k: float(stats[k]) for k in CT_KEYS}

    def transform(self, results):
        img = results['img'].astype(np.float32)  # a copy: the input is left untouched
        if self.mode == 'ct':
            s = self._ct_stats(results)
            if self.clip:
                np.clip(img, s['percentile_00_5'], s['percentile_99_5'], out=img)
            img -= np.float32(s['mean'])
            img /= np.float32(max(s['std'], 1e-8))
        elif self.mode == 'zscore':
            # per channel: a (C, D, H, W) image is normalised channel by channel
            axes = tuple(range(img.ndim - 3, img.ndim))
            mean = img.mean(axis=axes, keepdims=True, dtype=np.float64)
            std = img.std(axis=axes, keepdims=True, dtype=np.float64)
            img = (img - mean) / np.maximum(std, 1e-8)
        results['img'] = img.astype(np.float32, copy=False)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(mode={self.mode!r}, clip={self.clip})'

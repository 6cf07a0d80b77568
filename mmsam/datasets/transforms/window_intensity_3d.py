"""MedSAM2's CT intensity mapping: clip to a window, rescale to [0, 1] (via 8 bits)."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS


@TRANSFORMS.register_module()
class WindowIntensity3D(BaseTransform):
    """Clip ``img`` to ``window`` and rescale it to [0, 1], as MedSAM2 prepares CT volumes.

    MedSAM2's inference scripts (bowang-lab/MedSAM2 ``medsam2_infer_3D_CT.py``,
    ``medsam2_infer_general.py``) clip the volume to a HU window (``-150, 250`` by default;
    DeepLesion: each lesion's DICOM window), rescale the clipped volume by its own minimum and
    maximum to [0, 255], cast to uint8 (truncation), and later divide by 255; its training data
    (NPZ ``imgs``) are stored the same way. ``rescale='minmax'`` with ``quantize=True`` is that;
    ``rescale='window'`` maps the window's ends to 0 and 1 whatever the volume holds (the same
    when the volume reaches both ends, as abdominal CT does).

    Required keys: ``img``. Modified keys: ``img`` (float32 in [0, 1]).

    Args:
        window (tuple[float, float]): (low, high) HU. Default: (-150, 250).
        rescale (str): ``'minmax'`` or ``'window'``.
        quantize (bool): round down to multiples of 1/255 as MedSAM2's uint8 volumes.
    """

    def __init__(self, window=(-150.0, 250.0), rescale='minmax', quantize=True):
        low, high = (float(v) for v in window)
        if not high > low:
            raise ValueError(f'WindowIntensity3D window must be (low, high) with low < high, '
                             f'got {tuple(window)}')
        if rescale not in ('minmax', 'window'):
            raise ValueError(f"WindowIntensity3D rescale must be 'minmax' or 'window', "
                             f'got {rescale!r}')
        self.window, self.rescale, self.quantize = (low, high), rescale, bool(quantize)

    def transform(self, results):
        low, high = self.window
        img = np.clip(np.asarray(results['img'], np.float64), low, high)
        if self.rescale == 'minmax':
            low, high = float(img.min()), float(img.max())
        span = high - low
        img = (img - low) / span if span > 0 else np.zeros_like(img)
        if self.quantize:
            img = np.floor(img * 255.0) / 255.0
        results['img'] = img.astype(np.float32)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(window={self.window}, rescale={self.rescale!r}, '
                f'quantize={self.quantize})')

"""Random crop of a fraction of the slice, resized back to the slice's size."""
import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomCropZoom(BaseTransform):
    """Crop a random window of ``r * H`` x ``r * W`` pixels and resize it back to (H, W).

    H-SAM's official ``random_scale``: one ratio ``r`` drawn uniformly from ``crop_ratio``
    (official 0.2 - 0.8) for both sides, the window placed uniformly inside the slice, then
    zoomed back to the input size, bicubic for the image (scipy ``zoom`` order 3 there) and
    nearest for every map in ``seg_fields``. The content is enlarged by 1 / r.

    Required keys: ``img``; optional ``seg_fields``. Modified keys: ``img`` and each key in
    ``seg_fields``.

    Args:
        prob (float): probability of cropping. Default: 1.0.
        crop_ratio (tuple[float, float]): (min, max) side ratio of the window, in (0, 1].
    """

    def __init__(self, prob=1.0, crop_ratio=(0.2, 0.8)):
        self.prob = check_prob('prob', prob)
        self.crop_ratio = check_range('crop_ratio', crop_ratio, minimum=0, strict=True)
        if self.crop_ratio[1] > 1:
            raise ValueError(f'crop_ratio must be within (0, 1], got {crop_ratio!r}')

    @cache_randomness
    def _sample(self, height, width):
        """(top, left, crop height, crop width), or None to skip."""
        if np.random.rand() >= self.prob:
            return None
        ratio = np.random.uniform(*self.crop_ratio)
        ch, cw = max(int(height * ratio), 1), max(int(width * ratio), 1)
        return (np.random.randint(0, height - ch + 1), np.random.randint(0, width - cw + 1),
                ch, cw)

    def transform(self, results):
        img = results['img']
        height, width = img.shape[:2]
        window = self._sample(height, width)
        if window is None:
            return results
        top, left, ch, cw = window
        crop = np.ascontiguousarray(img[top:top + ch, left:left + cw])
        results['img'] = cv2.resize(crop, (width, height),
                                    interpolation=cv2.INTER_CUBIC).astype(img.dtype, copy=False)
        for key in results.get('seg_fields', []):
            seg = results[key]
            work = seg.astype(np.uint8) if seg.dtype == np.bool_ else seg
            crop = np.ascontiguousarray(work[top:top + ch, left:left + cw])
            results[key] = cv2.resize(crop, (width, height),
                                      interpolation=cv2.INTER_NEAREST).astype(seg.dtype,
                                                                              copy=False)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob}, crop_ratio={self.crop_ratio})'

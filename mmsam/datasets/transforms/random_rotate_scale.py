"""Random in-plane rotation and isotropic scaling of a slice and its label maps."""
import numbers

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS


def check_prob(name, value):
    """Raise ValueError unless ``value`` is a probability in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f'{name} must be a number in [0, 1], got {value!r}')
    return float(value)


def check_range(name, value, minimum=None, strict=False):
    """Return ``value`` as a (low, high) float pair, raising ValueError naming ``name``.

    Args:
        name (str): argument name used in the error message.
        value (Sequence[float]): two numbers with low <= high.
        minimum (float, optional): lower bound for both ends.
        strict (bool): the bound is exclusive (> minimum) instead of inclusive.
    """
    if (isinstance(value, (str, bytes)) or not hasattr(value, '__len__') or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
        raise ValueError(f'{name} must be a (min, max) pair of numbers, got {value!r}')
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise ValueError(f'{name} must have min <= max, got {value!r}')
    if minimum is not None and (low <= minimum if strict else low < minimum):
        raise ValueError(f'{name} must be {">" if strict else ">="} {minimum}, got {value!r}')
    return low, high


def check_border_value(name, value):
    """Raise ValueError unless ``value`` is a single number (one fill for every channel)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{name} must be a single number, got {value!r}')
    return value


def remap_fields(results, map_x, map_y, img_border_value, seg_border_value):
    """Resample ``results['img']`` and every map in ``results['seg_fields']`` in place.

    Output pixel (y, x) takes the value at source position (map_y[y, x], map_x[y, x]):
    bilinear for the image, nearest for the label maps (so no interpolated class ids), and
    the border values where the source position falls outside the image.

    Args:
        results (dict): with ``img`` (H, W) or (H, W, C) and optional ``seg_fields``.
        map_x (np.ndarray): (H, W) float32 source column of each output pixel.
        map_y (np.ndarray): (H, W) float32 source row of each output pixel.
        img_border_value (float): image fill outside the source image.
        seg_border_value (int): label fill outside the source image.
    """
    img = results['img']
    height, width = img.shape[:2]
    for key in results.get('seg_fields', []):
        if results[key].shape[:2] != (height, width):
            raise ValueError(f'results[{key!r}] has shape {results[key].shape[:2]}, the image '
                             f'{(height, width)}: a warp needs them aligned')
    # A scalar borderValue fills only the first channel in OpenCV; repeat it.
    results['img'] = cv2.remap(img, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(img_border_value, ) * 4).astype(img.dtype, copy=False)
    for key in results.get('seg_fields', []):
        seg = results[key]
        # OpenCV has no bool type and reads int64 as int32; class ids fit either way.
        work = seg.astype(np.uint8) if seg.dtype == np.bool_ else seg
        warped = cv2.remap(work, map_x, map_y, interpolation=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(seg_border_value, ) * 4)
        results[key] = warped.astype(seg.dtype, copy=False)
    return results


@TRANSFORMS.register_module()
class RandomRotateScale(BaseTransform):
    """Rotate by a random angle and scale by a random factor about the image centre.

    One affine warp (rotation and isotropic scale together), so the image is interpolated only
    once; the output keeps the input size (H, W). The image is resampled bilinearly, every map
    in ``seg_fields`` with nearest neighbour, so labels keep their dtype and take no values
    other than their own and ``seg_border_value``.

    Direction: a positive angle turns the content counter-clockwise as the image is displayed
    (row 0 at the top), as ``cv2.getRotationMatrix2D`` does; ``rotate_range=(90, 90)`` on a
    square image equals ``np.rot90(img)``. A scale > 1 enlarges the content (zoom in), an
    object's area growing by about scale².

    Border values: pixels whose source lies outside the slice are filled with
    ``img_border_value=0`` and ``seg_border_value=0``. The slices are windowed CT/MR with 0 as
    the darkest value, i.e. air outside the body, and what is outside the field of view is
    background, so label 0 (background) describes the filled image truthfully. The ignore label
    255 is not the default: the labels are class ids < num_classes used directly by one-hot
    losses and metrics (mmseg's DiceLoss ``ignore_index`` drops a class channel, not pixels),
    so 255 would break them. Set ``seg_border_value=255`` only with a loss that ignores it.

    A single ``prob`` decides whether the warp happens; to rotate only, pass
    ``scale_range=(1, 1)``, to scale only, ``rotate_range=(0, 0)``. Randomness comes from
    ``np.random`` (seeded by mmengine) through a ``cache_randomness`` method.

    Required keys: ``img``; optional ``seg_fields`` and the keys it names.

    Modified keys: ``img``, and each key in ``seg_fields`` (e.g. ``gt_seg_map``).

    Args:
        prob (float): probability of applying the warp. Default: 0.5.
        rotate_range (tuple[float, float]): (min, max) angle in degrees, drawn uniformly.
            Default: (-20, 20).
        scale_range (tuple[float, float]): (min, max) isotropic scale factor > 0, drawn
            uniformly. Default: (0.9, 1.1).
        img_border_value (float): image fill outside the source slice, every channel.
            Default: 0.
        seg_border_value (int): label fill outside the source slice. Default: 0 (background).
    """

    def __init__(self, prob=0.5, rotate_range=(-20., 20.), scale_range=(0.9, 1.1),
                 img_border_value=0., seg_border_value=0):
        self.prob = check_prob('prob', prob)
        self.rotate_range = check_range('rotate_range', rotate_range)
        self.scale_range = check_range('scale_range', scale_range, minimum=0, strict=True)
        self.img_border_value = check_border_value('img_border_value', img_border_value)
        self.seg_border_value = check_border_value('seg_border_value', seg_border_value)

    @cache_randomness
    def _sample(self):
        """Return (angle in degrees, scale), or None when the warp is skipped."""
        if np.random.rand() >= self.prob:
            return None
        return np.random.uniform(*self.rotate_range), np.random.uniform(*self.scale_range)

    @staticmethod
    def sampling_maps(shape, angle, scale):
        """Source coordinates of each output pixel for a rotation + scale about the centre.

        Args:
            shape (tuple[int, int]): (H, W).
            angle (float): degrees, counter-clockwise as displayed.
            scale (float): isotropic factor, > 1 enlarges.

        Returns:
            tuple[np.ndarray, np.ndarray]: map_x, map_y, each (H, W) float32.
        """
        height, width = shape
        # Pixel centres are at integer coordinates, so the centre of the grid is (n - 1) / 2;
        # this makes a 90 degree turn an exact permutation of the pixels.
        cx, cy = (width - 1) / 2., (height - 1) / 2.
        theta = np.deg2rad(angle)
        cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
        dy, dx = np.mgrid[0:height, 0:width].astype(np.float64)
        dx -= cx
        dy -= cy
        # Inverse of p_out = c + scale * [[cos, sin], [-sin, cos]] (p_src - c) (cv2's matrix).
        map_x = cx + cos * dx - sin * dy
        map_y = cy + sin * dx + cos * dy
        return map_x.astype(np.float32), map_y.astype(np.float32)

    def transform(self, results):
        params = self._sample()
        if params is None:
            return results
        map_x, map_y = self.sampling_maps(results['img'].shape[:2], *params)
        return remap_fields(results, map_x, map_y, self.img_border_value,
                            self.seg_border_value)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'rotate_range={self.rotate_range}, scale_range={self.scale_range}, '
                f'img_border_value={self.img_border_value}, '
                f'seg_border_value={self.seg_border_value})')

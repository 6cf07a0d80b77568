"""Random smooth (elastic) deformation of a slice and its label maps."""
import numbers

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from scipy.ndimage import gaussian_filter

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_border_value, check_prob, check_range, remap_fields


def _as_range(name, value, minimum, strict):
    """A number means that fixed value; a pair means a uniform draw between its ends."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (value, value)
    return check_range(name, value, minimum=minimum, strict=strict)


@TRANSFORMS.register_module()
class RandomElasticDeformation(BaseTransform):
    """Warp the image and its label maps with a random smooth displacement field.

    The Simard et al. (2003) elastic distortion: each displacement component is uniform noise
    in [-1, 1] per pixel, smoothed by a Gaussian of standard deviation ``sigma`` pixels and
    multiplied by ``alpha``. Output pixel (y, x) then takes the source value at
    (y + dy, x + dx): bilinear for the image, nearest for every map in ``seg_fields``, so labels
    keep their dtype and take no values other than their own and ``seg_border_value``. The
    image size (H, W) is unchanged.

    Smoothing shrinks the noise, so ``alpha`` is large: each displacement component has a
    standard deviation of about ``alpha / (2 * sqrt(3 * pi) * sigma) ~= 0.16 * alpha / sigma``
    pixels, and its spatial derivative (the local stretch, which changes object areas) about
    ``0.115 * alpha / sigma**2``. The defaults (alpha up to 150, sigma 10-13) give at most
    ~2.4 px and ~17% stretch; on a 224 px slice organ areas change by a few percent on average.

    With ``alpha_affine > 0`` a random affine warp comes first, as in H-SAM's official
    ``random_elastic``: the three points ``c + s``, ``c + (s, -s)``, ``c - s`` (c the centre,
    s a third of the shorter side) each move by a uniform offset in
    [-alpha_affine, alpha_affine] pixels per coordinate, and the affine map through them is
    composed with the displacement field, so the slice is still interpolated only once. With
    ``relative_to_width=True``, ``alpha``, ``sigma`` and ``alpha_affine`` are multiples of the
    slice width W (official H-SAM: alpha 2 W, sigma 0.08 W, alpha_affine 0.08 W).

    Pixels pulled from outside the slice are filled with ``img_border_value`` and
    ``seg_border_value`` (0: air and background, see :class:`RandomRotateScale`).
    Randomness comes from ``np.random`` (seeded by mmengine) through a ``cache_randomness``
    method.

    Required keys: ``img``; optional ``seg_fields`` and the keys it names.

    Modified keys: ``img``, and each key in ``seg_fields`` (e.g. ``gt_seg_map``).

    Args:
        prob (float): probability of applying the deformation. Default: 0.5.
        alpha (float | tuple[float, float]): displacement scale >= 0, or a (min, max) range
            drawn uniformly per sample. 0 gives the identity. Default: (0, 150).
        sigma (float | tuple[float, float]): Gaussian smoothing in pixels > 0, or a (min, max)
            range drawn uniformly per sample; larger is smoother. Default: (10, 13).
        img_border_value (float): image fill outside the source slice, every channel.
            Default: 0.
        seg_border_value (int): label fill outside the source slice. Default: 0 (background).
        alpha_affine (float): largest offset of the affine warp's control points, >= 0
            (0: no affine). Default: 0.
        relative_to_width (bool): read alpha, sigma and alpha_affine as multiples of the
            slice width. Default: False (pixels).
    """

    def __init__(self, prob=0.5, alpha=(0., 150.), sigma=(10., 13.), img_border_value=0.,
                 seg_border_value=0, alpha_affine=0., relative_to_width=False):
        self.prob = check_prob('prob', prob)
        self.alpha = _as_range('alpha', alpha, minimum=0, strict=False)
        self.sigma = _as_range('sigma', sigma, minimum=0, strict=True)
        self.img_border_value = check_border_value('img_border_value', img_border_value)
        self.seg_border_value = check_border_value('seg_border_value', seg_border_value)
        self.alpha_affine = _as_range('alpha_affine', alpha_affine, minimum=0, strict=False)[1]
        self.relative_to_width = bool(relative_to_width)

    @staticmethod
    def affine_points(shape):
        """The official control points (3, 2) as (x, y) float32 for an (H, W) slice."""
        centre = np.float32(shape[:2])[::-1] // 2
        side = min(shape[:2]) // 3
        return np.float32([centre + side, [centre[0] + side, centre[1] - side], centre - side])

    @cache_randomness
    def _sample(self, shape):
        """Return (dx, dy, inverse affine (2, 3) or None), fields (H, W) float64, or None."""
        if np.random.rand() >= self.prob:
            return None
        unit = shape[1] if self.relative_to_width else 1.0
        alpha = np.random.uniform(*self.alpha) * unit
        sigma = np.random.uniform(*self.sigma) * unit
        dx, dy = (alpha * gaussian_filter(np.random.uniform(-1., 1., shape), sigma)
                  for _ in range(2))
        inverse = None
        if self.alpha_affine > 0:
            src = self.affine_points(shape)
            reach = self.alpha_affine * unit
            dst = src + np.random.uniform(-reach, reach, size=src.shape).astype(np.float32)
            inverse = cv2.invertAffineTransform(cv2.getAffineTransform(src, dst))
        return dx, dy, inverse

    def transform(self, results):
        height, width = results['img'].shape[:2]
        field = self._sample((height, width))
        if field is None:
            return results
        dx, dy, inverse = field
        rows, cols = np.mgrid[0:height, 0:width]
        map_x, map_y = cols + dx, rows + dy
        if inverse is not None:
            # affine first, then the field: source = A^-1 (p + d(p))
            map_x, map_y = (inverse[0, 0] * map_x + inverse[0, 1] * map_y + inverse[0, 2],
                            inverse[1, 0] * map_x + inverse[1, 1] * map_y + inverse[1, 2])
        map_x, map_y = map_x.astype(np.float32), map_y.astype(np.float32)
        return remap_fields(results, map_x, map_y, self.img_border_value,
                            self.seg_border_value)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, alpha={self.alpha}, '
                f'sigma={self.sigma}, img_border_value={self.img_border_value}, '
                f'seg_border_value={self.seg_border_value}, alpha_affine={self.alpha_affine}, '
                f'relative_to_width={self.relative_to_width})')

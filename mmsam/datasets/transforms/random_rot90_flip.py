"""Random multiple-of-90-degree rotation followed by a random-axis flip (SAMed)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob


@TRANSFORMS.register_module()
class RandomRot90Flip(BaseTransform):
    """``np.rot90`` by k in {0, 1, 2, 3} quarter turns, then a flip along axis 0 or 1.

    SAMed's official ``random_rot_flip``: k and the flip axis are drawn uniformly and the flip
    always happens. A flip after a rotation is a reflection, so the result is one of the 4
    reflections of the square (the 2 diagonal transposes and the 2 axis flips, 1/4 each),
    never the identity or a pure rotation. Exact pixel permutation, no interpolation.
    Non-square slices change shape under odd k (H and W swap), as ``np.rot90`` does.

    Required keys: ``img``; optional ``seg_fields``. Modified keys: ``img``, ``img_shape`` and
    each key in ``seg_fields``.

    Args:
        prob (float): probability of applying it. Default: 1.0.
    """

    def __init__(self, prob=1.0):
        self.prob = check_prob('prob', prob)

    @cache_randomness
    def _sample(self):
        """(k, axis), or None to skip."""
        if np.random.rand() >= self.prob:
            return None
        return np.random.randint(0, 4), np.random.randint(0, 2)

    def transform(self, results):
        params = self._sample()
        if params is None:
            return results
        k, axis = params
        for key in ['img', *results.get('seg_fields', [])]:
            results[key] = np.ascontiguousarray(np.flip(np.rot90(results[key], k), axis=axis))
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob})'

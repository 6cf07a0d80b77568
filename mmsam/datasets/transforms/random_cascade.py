"""Apply at most one of several transforms, each tried in turn with its own probability."""
import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmcv.transforms.utils import cache_randomness

from mmsam.registry import TRANSFORMS
from .random_rotate_scale import check_prob


@TRANSFORMS.register_module()
class RandomCascade(BaseTransform):
    """An if / elif chain of random augmentations: branch i runs with probability ``probs[i]``
    given that no earlier branch ran, and at most one branch runs per sample.

    This is the structure of SAMed's and H-SAM's official ``RandomGenerator``; e.g. H-SAM's
    ``if r() > 0.55: rotate  elif r() > 0.25: crop-zoom  elif r() > 0.15: elastic`` is
    ``probs=(0.45, 0.75, 0.85)``: rotation 45%, crop-zoom 0.55 * 0.75 = 41.25%, elastic
    0.55 * 0.25 * 0.85 = 11.69%, nothing 2.06%. :meth:`branch_probabilities` gives these
    marginals.

    Args:
        transforms (list[dict | list[dict]]): one transform (or a list, run in sequence)
            per branch.
        probs (list[float]): conditional probability of each branch, in [0, 1].
    """

    def __init__(self, transforms, probs):
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise ValueError(f'RandomCascade transforms must be a non-empty list, got '
                             f'{transforms!r}')
        if not isinstance(probs, (list, tuple)) or len(probs) != len(transforms):
            raise ValueError(f'RandomCascade needs one prob per transform: {len(transforms)} '
                             f'transform(s), probs={probs!r}')
        self.probs = [check_prob(f'probs[{i}]', p) for i, p in enumerate(probs)]
        self.transforms = [Compose(t if isinstance(t, (list, tuple)) else [t])
                           for t in transforms]

    def branch_probabilities(self):
        """Marginal probability of each branch and of no branch: list of len(probs) + 1."""
        out, remaining = [], 1.0
        for p in self.probs:
            out.append(remaining * p)
            remaining *= 1 - p
        return out + [remaining]

    @cache_randomness
    def _choose(self):
        """Index of the branch to run, or None."""
        for i, p in enumerate(self.probs):
            if np.random.rand() < p:
                return i
        return None

    def transform(self, results):
        index = self._choose()
        return results if index is None else self.transforms[index](results)

    def __repr__(self):
        return f'{self.__class__.__name__}(transforms={self.transforms}, probs={self.probs})'

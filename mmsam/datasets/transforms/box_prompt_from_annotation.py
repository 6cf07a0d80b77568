"""SAM box prompts from the extremity points of one annotator's mask."""
import zlib

import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS

EMPTY_POLICIES = ('full_image', 'centre', 'error')
READER_CHOICES = ('non_empty', 'any')
# The public pSAM code's box for an empty mask: the central half of the image on each axis.
CENTRE_FRACTION = 0.25


@TRANSFORMS.register_module()
class BoxPromptFromAnnotation(BaseTransform):
    """Pick one annotation, box it, and make it the single-mask target.

    The box is the tight box around the chosen mask's extremity points, ``(x0, y0, x1, y1)``
    in pixel indices of the loaded image (the head scales it to the network input), optionally
    jittered by up to ``jitter`` pixels per coordinate and clipped to the image.

    Which annotation (``readers``): uniformly among the non-empty ones (``'non_empty'``, as
    SeqSAM) or among all K (``'any'``, as the public pSAM code, which may pick a reader who
    marked nothing). With ``seed=None`` the draw uses numpy's global generator (seeded by
    mmengine's ``randomness``): use it for training. With a ``seed`` the draw depends only on
    the seed and the sample's ``img_path``, so evaluation is repeatable whatever the order or
    number of workers: use it in test pipelines.

    An empty chosen mask (``readers='any'``, or ``'non_empty'`` on an image whose annotations
    are all empty: LIDC-IDRI has such crops) follows ``empty``: ``'full_image'`` prompts the
    whole image, ``'centre'`` the central box ``[0.25 W, 0.25 H, 0.75 W, 0.75 H]`` (the public
    pSAM code's fallback), both with the empty mask as the target, and ``'error'`` stops with
    the file's name.

    Required keys: ``gt_annotations`` (K, H, W), ``img_path``.
    Added keys: ``prompt_box`` (4,) float32, ``prompt_annotation`` (int, the chosen reader;
    -1 if all are empty and ``readers='non_empty'``), ``gt_seg_map`` (H, W) uint8 (the chosen
    mask), ``seg_fields``.

    Args:
        jitter (int): largest random shift of each box coordinate, in pixels.
        seed (int, optional): makes the draw deterministic per sample (test time).
        empty (str): ``'full_image'``, ``'centre'`` or ``'error'``.
        readers (str): ``'non_empty'`` or ``'any'``.
    """

    def __init__(self, jitter=0, seed=None, empty='full_image', readers='non_empty'):
        if jitter < 0:
            raise ValueError(f'BoxPromptFromAnnotation jitter must be >= 0, got {jitter}')
        if empty not in EMPTY_POLICIES:
            raise ValueError(f'BoxPromptFromAnnotation empty must be one of {EMPTY_POLICIES}, '
                             f'got {empty!r}')
        if readers not in READER_CHOICES:
            raise ValueError(f'BoxPromptFromAnnotation readers must be one of '
                             f'{READER_CHOICES}, got {readers!r}')
        self.jitter, self.seed, self.empty, self.readers = int(jitter), seed, empty, readers

    def _rng(self, results):
        if self.seed is None:  # a generator seeded from numpy's global (mmengine-seeded) state
            return np.random.default_rng(np.random.randint(2**31))
        key = zlib.crc32(str(results['img_path']).encode())
        return np.random.default_rng([self.seed, key])

    @staticmethod
    def box_of(mask):
        """Tight box of a non-empty (H, W) mask: (x0, y0, x1, y1) pixel indices."""
        rows, cols = np.nonzero(mask)
        return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32)

    def empty_box(self, results, shape):
        """The box of an empty target by the ``empty`` policy: (4,) float32."""
        h, w = shape
        if self.empty == 'error':
            raise ValueError(f'{results["img_path"]}: the chosen annotation is empty, so there '
                             'is nothing to box (set empty="full_image" or "centre" to prompt '
                             'a fixed box with an empty target)')
        if self.empty == 'centre':
            low, high = CENTRE_FRACTION, 1 - CENTRE_FRACTION
            return np.array([int(w * low), int(h * low), int(w * high), int(h * high)],
                            dtype=np.float32)
        return np.array([0, 0, w - 1, h - 1], dtype=np.float32)

    def transform(self, results):
        annotations = results['gt_annotations']
        h, w = annotations.shape[1:]
        non_empty = np.flatnonzero(annotations.reshape(len(annotations), -1).any(axis=1))
        rng = self._rng(results)
        if self.readers == 'any':
            choice = int(rng.integers(len(annotations)))
        else:
            choice = int(non_empty[rng.integers(len(non_empty))]) if len(non_empty) else -1
        if choice < 0 or choice not in non_empty:
            box = self.empty_box(results, (h, w))
            target = np.zeros((h, w), np.uint8)
        else:
            target = annotations[choice].astype(np.uint8)
            box = self.box_of(target)
            if self.jitter:
                box = box + rng.integers(-self.jitter, self.jitter + 1, size=4)
                box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1]).astype(np.float32)
                box[2:] = np.maximum(box[2:], box[:2])
        results['prompt_box'] = box
        results['prompt_annotation'] = choice
        results['gt_seg_map'] = target
        results['seg_fields'] = list(set(results.get('seg_fields', [])) | {'gt_seg_map'})
        return results

"""SAM box prompts from the extremity points of one annotator's mask."""
import zlib

import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS

EMPTY_POLICIES = ('full_image', 'error')


@TRANSFORMS.register_module()
class BoxPromptFromAnnotation(BaseTransform):
    """Pick one non-empty annotation, box it, and make it the single-mask target.

    The box is the tight box around the chosen mask's extremity points, ``(x0, y0, x1, y1)``
    in pixel indices of the loaded image (the head scales it to the network input), optionally
    jittered by up to ``jitter`` pixels per coordinate and clipped to the image.

    Which annotation: uniformly among the non-empty ones. With ``seed=None`` the draw uses
    numpy's global generator (seeded by mmengine's ``randomness``): use it for training. With a
    ``seed`` the draw depends only on the seed and the sample's ``img_path``, so evaluation is
    repeatable whatever the order or number of workers: use it in test pipelines.

    Images whose annotations are all empty (LIDC-IDRI has such crops: no reader marked a
    nodule) follow ``empty``: ``'full_image'`` prompts the whole image with an empty target
    (the model learns to answer "nothing here"), ``'error'`` stops with the file's name.

    Required keys: ``gt_annotations`` (K, H, W), ``img_path``.
    Added keys: ``prompt_box`` (4,) float32, ``prompt_annotation`` (int, -1 if none),
    ``gt_seg_map`` (H, W) uint8 (the chosen mask), ``seg_fields``.

    Args:
        jitter (int): largest random shift of each box coordinate, in pixels.
        seed (int, optional): makes the draw deterministic per sample (test time).
        empty (str): ``'full_image'`` or ``'error'``.
    """

    def __init__(self, jitter=0, seed=None, empty='full_image'):
        if jitter < 0:
            raise ValueError(f'BoxPromptFromAnnotation jitter must be >= 0, got {jitter}')
        if empty not in EMPTY_POLICIES:
            raise ValueError(f'BoxPromptFromAnnotation empty must be one of {EMPTY_POLICIES}, '
                             f'got {empty!r}')
        self.jitter, self.seed, self.empty = int(jitter), seed, empty

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

    def transform(self, results):
        annotations = results['gt_annotations']
        h, w = annotations.shape[1:]
        non_empty = np.flatnonzero(annotations.reshape(len(annotations), -1).any(axis=1))
        rng = self._rng(results)
        if len(non_empty) == 0:
            if self.empty == 'error':
                raise ValueError(f'{results["img_path"]}: every annotation is empty, so there '
                                 'is nothing to box (set empty="full_image" to prompt the '
                                 'whole image with an empty target)')
            choice, box = -1, np.array([0, 0, w - 1, h - 1], dtype=np.float32)
            target = np.zeros((h, w), np.uint8)
        else:
            choice = int(non_empty[rng.integers(len(non_empty))])
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

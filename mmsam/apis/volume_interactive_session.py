"""Interactive segmentation of a volume with a slice-wise box-prompted model (MedSAM, SAM-MCL,
SeqSAM, P-SAM): a box on a key slice propagates to the neighbouring slices, clicks (x, y, z)
refine a slice and re-propagate from it.

>>> session = VolumeInteractiveSession(model, volume)     # (D, H, W) in [0, 1]; encodes nothing
>>> masks = session.segment_box(box=[x0, y0, x1, y1], z=12)
>>> masks = session.click(x, y, z=14, label=0)            # refine slice 14, re-propagate

Propagation follows MedSAM's 3D inference: from a segmented slice, the next slice's box is the
bounding box of the current slice's mask (widened by ``box_margin`` pixels), slice after slice
away from the key slice, until a mask vanishes (that slice and the ones that would depend on it
stay empty) or a slice the user prompted is reached. Each slice is encoded at most once, when it
is first needed (one :class:`~mmsam.apis.InteractiveSession` per slice, kept).

Which slices depend on which: a propagated slice k depends on its parent, the neighbour its box
came from. A click on slice z refines z with all its clicks, its box (given or propagated) and
its previous logits as SAM's mask prompt; z then becomes a user slice and the slices that depend
on it (away from its parent; both ways for a key slice or a slice with clicks only) are
segmented again from it.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch.nn as nn

from .interactive_session import InteractivePrediction, InteractiveSession


def mask_box(mask: np.ndarray, margin: int = 0) -> Optional[Tuple[float, float, float, float]]:
    """The bounding box (x0, y0, x1, y1), corners inclusive, of a (H, W) mask's pixels, widened
    by ``margin`` and clipped to the slice; None for an empty mask."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    height, width = mask.shape
    return (float(max(cols.min() - margin, 0)), float(max(rows.min() - margin, 0)),
            float(min(cols.max() + margin, width - 1)), float(min(rows.max() + margin,
                                                                  height - 1)))


class VolumeInteractiveSession:
    """Box and click sessions on a (D, H, W) volume with a slice-wise box-prompted model.

    Args:
        model (nn.Module): a box-prompted ``MultiHypothesisSegmentor`` (see
            :class:`InteractiveSession`).
        volume (ndarray): (D, H, W) intensities in [0, 1] (model space, e.g.
            :func:`mmsam.apis.scan_inference.model_space` of a scan).
        embedding_cache (callable, optional): passed to each slice's
            :class:`InteractiveSession` (e.g. an on-disk ``InferenceEmbeddingCache``).
        box_margin (int): pixels added around a mask's bounding box for the next slice (0, as
            MedSAM's 3D inference).

    Attributes:
        masks (ndarray): (D, H, W) uint8, the current answer.
        boxes (dict[int, tuple]): the box each segmented slice was last given.
        clicks (dict[int, list]): the clicks (x, y, label) of each slice.
        parents (dict[int, int]): propagated slice -> the slice its box came from.
        answers (dict[int, InteractivePrediction]): each segmented slice's last answer.
    """

    def __init__(self, model: nn.Module, volume: np.ndarray, embedding_cache=None,
                 box_margin: int = 0):
        volume = np.asarray(volume, np.float32)
        if volume.ndim != 3:
            raise ValueError(f'VolumeInteractiveSession: expected a (D, H, W) volume, got shape '
                             f'{volume.shape}')
        InteractiveSession.check_model(model)
        self.model, self.volume = model, volume
        self.embedding_cache, self.box_margin = embedding_cache, int(box_margin)
        self.masks = np.zeros(volume.shape, np.uint8)
        self.boxes: Dict[int, tuple] = {}
        self.clicks: Dict[int, List[Tuple[float, float, int]]] = {}
        self.parents: Dict[int, int] = {}
        self.anchors: set = set()
        self.answers: Dict[int, InteractivePrediction] = {}
        self._sessions: Dict[int, InteractiveSession] = {}

    @property
    def encoded_slices(self) -> List[int]:
        """The slices whose image embedding has been computed (each once)."""
        return sorted(self._sessions)

    def segment_box(self, box: Sequence[float], z: int) -> np.ndarray:
        """Segment key slice ``z`` with ``box`` and propagate to both sides.

        Args:
            box (Sequence[float]): (x0, y0, x1, y1), pixels of the slice.
            z (int): the key slice.

        Returns:
            ndarray: (D, H, W) uint8 masks (:attr:`masks`).
        """
        depth, height, width = self.volume.shape
        box = tuple(float(v) for v in np.asarray(box, np.float64).reshape(-1))
        if len(box) != 4:
            raise ValueError(f'VolumeInteractiveSession.segment_box: box must be (x0, y0, x1, '
                             f'y1), got {list(box)}')
        x0, y0, x1, y1 = box
        self._check_slice(z, 'segment_box')
        if not (0 <= x0 <= x1 <= width - 1 and 0 <= y0 <= y1 <= height - 1):
            raise ValueError(f'VolumeInteractiveSession.segment_box: box {list(box)} lies '
                             f'outside the {width} x {height} (W x H) slices; need 0 <= x0 <= '
                             f'x1 <= {width - 1} and 0 <= y0 <= y1 <= {height - 1}')
        self.clicks.pop(z, None)
        self.parents.pop(z, None)
        self.anchors.add(z)
        self.boxes[z] = box
        self._predict(z, box=box, use_previous=False)
        for step in (1, -1):
            self._propagate(z, step)
        return self.masks

    def click(self, x: float, y: float, z: int, label: int = 1) -> np.ndarray:
        """Add a click on slice ``z``, refine it and re-propagate to the slices depending on it.

        Args:
            x, y (float): pixels of the slice (x along W, y along H).
            z (int): the slice.
            label (int): 1 foreground, 0 background.

        Returns:
            ndarray: (D, H, W) uint8 masks (:attr:`masks`).

        Raises:
            ValueError: a click outside the volume or a label other than 0 / 1 (nothing runs).
        """
        depth, height, width = self.volume.shape
        whole = isinstance(z, (int, np.integer, float, np.floating)) and float(z).is_integer()
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1 and whole and 0 <= z < depth):
            raise ValueError(f'VolumeInteractiveSession.click: ({x}, {y}, {z}) lies outside '
                             f'the volume of {width} x {height} x {depth} (W x H x D) voxels; '
                             f'need 0 <= x <= {width - 1}, 0 <= y <= {height - 1} and an '
                             f'integer 0 <= z <= {depth - 1}')
        if label not in (0, 1):
            raise ValueError(f'VolumeInteractiveSession.click: label must be 1 (foreground) or '
                             f'0 (background), got {label!r}')
        z = int(z)
        self.clicks.setdefault(z, []).append((float(x), float(y), int(label)))
        parent = self.parents.pop(z, None)
        self.anchors.add(z)
        coords = [c[:2] for c in self.clicks[z]]
        labels = [c[2] for c in self.clicks[z]]
        self._predict(z, box=self.boxes.get(z), points=coords, point_labels=labels,
                      use_previous=True)
        for step in ((z - parent, ) if parent is not None else (1, -1)):
            self._propagate(z, step)
        return self.masks

    def _check_slice(self, z, what):
        depth = self.volume.shape[0]
        if not (isinstance(z, (int, np.integer)) and 0 <= z < depth):
            raise ValueError(f'VolumeInteractiveSession.{what}: slice {z!r} is outside the '
                             f'volume (need an integer 0 <= z <= {depth - 1})')

    def slice_session(self, z: int) -> InteractiveSession:
        """Slice ``z``'s session, encoding the slice the first time it is needed."""
        if z not in self._sessions:
            self._sessions[z] = InteractiveSession(self.model, self.volume[z],
                                                   embedding_cache=self.embedding_cache,
                                                   where=f'slice {z}')
        return self._sessions[z]

    def _predict(self, z, box=None, points=None, point_labels=None, use_previous=True):
        answer = self.slice_session(z).predict(box=box, points=points, point_labels=point_labels,
                                          use_previous=use_previous)
        self.answers[z] = answer
        self.masks[z] = answer.mask
        return answer

    def _propagate(self, start: int, step: int) -> None:
        """Segment start + step, start + 2 step, ... from their neighbour's mask box, until a
        mask vanishes, a user slice or the volume's end; clear what depended on a vanished one."""
        depth = self.volume.shape[0]
        previous, k = start, start + step
        while 0 <= k < depth and k not in self.anchors:
            box = mask_box(self.masks[previous], self.box_margin)
            if box is None:
                self._clear_dependants(k, step, previous)
                return
            self.parents[k], self.boxes[k] = previous, box
            self._predict(k, box=box, use_previous=False)
            previous, k = k, k + step

    def _clear_dependants(self, k: int, step: int, parent: int) -> None:
        """Empty slice k and the chain after it when they were propagated from ``parent``'s
        side (they depended on a mask that vanished)."""
        depth = self.volume.shape[0]
        while 0 <= k < depth and self.parents.get(k) == parent:
            self.masks[k] = 0
            del self.parents[k]
            self.boxes.pop(k, None)
            self.answers.pop(k, None)
            parent, k = k, k + step

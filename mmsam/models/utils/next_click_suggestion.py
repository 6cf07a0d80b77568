"""Next-click suggestions from the disagreement of M hypotheses (no ground truth needed).

A multi-hypothesis head (SAM-MCL, SeqSAM, P-SAM) answers one prompt with M masks. Where they
disagree is where the model is unsure, so a click there is likely to help. The definitions:

- share ``p`` (H, W): the mean over the M hypotheses of their foreground probability (the
  masks' votes, or the sigmoid of the logits): the per-pixel share of hypotheses that mark the
  pixel, as :func:`mmsam.apis.scan_inference` writes it in the agreement file;
- agreement ``a = max(p, 1 - p)`` in [0.5, 1]: the share of hypotheses that side with the
  pixel's majority; 1 where all agree, 0.5 where they are split evenly;
- low-agreement regions: the face-connected regions of ``a < agreement_threshold``
  (default 0.75: with M = 3 binary masks, the pixels one hypothesis disputes);
- the suggested region is the one with the largest disagreement mass ``sum(1 - a)`` (size
  times depth of the doubt; a single noisy pixel weighs little), and the suggested point is
  that region's centre: its pixel farthest from the region's boundary (as the click
  simulator's choice inside an error region), ties going to the pixel nearest the mean of the
  tied ones (the middle of a thin band).
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from scipy import ndimage

from mmsam.datasets.transforms.click_simulator import index_to_xyz

ArrayLike = Union[np.ndarray, torch.Tensor]


@dataclass
class ClickSuggestion:
    """A suggested click.

    Attributes:
        point (ndarray): (2,) float32 (x, y) pixel indices.
        agreement (float): the agreement ``max(p, 1 - p)`` at the point, in [0.5, 1].
        share (float): the share ``p`` of hypotheses marking the point (foreground probability).
        region_size (int): pixels in the chosen low-agreement region.
        region_mass (float): its disagreement mass ``sum(1 - a)``.
    """

    point: np.ndarray
    agreement: float
    share: float
    region_size: int
    region_mass: float


def hypothesis_share(hypotheses: ArrayLike, logits: bool = False) -> np.ndarray:
    """Per-pixel share of the hypotheses that mark a pixel: (H, W) float64 in [0, 1].

    Args:
        hypotheses (ndarray | Tensor): (M, H, W) binary masks or probabilities in [0, 1], or
            logits with ``logits=True``.
        logits (bool): apply the sigmoid first.
    """
    if isinstance(hypotheses, torch.Tensor):
        hypotheses = hypotheses.detach().float().cpu().numpy()
    values = np.asarray(hypotheses, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(f'suggest_next_click: hypotheses must be (M, H, W), got shape '
                         f'{values.shape}')
    if logits:
        values = 1.0 / (1.0 + np.exp(-values))
    elif values.min() < 0 or values.max() > 1:
        raise ValueError('suggest_next_click: hypotheses hold values outside [0, 1]; pass '
                         'masks or probabilities, or logits with logits=True')
    return values.mean(0)


def agreement_map(hypotheses: ArrayLike, logits: bool = False) -> np.ndarray:
    """Per-pixel agreement ``max(p, 1 - p)``: (H, W) float64 in [0.5, 1] (see the module)."""
    share = hypothesis_share(hypotheses, logits)
    return np.maximum(share, 1.0 - share)


def suggest_next_click(hypotheses: ArrayLike, logits: bool = False,
                       agreement_threshold: float = 0.75,
                       valid: Optional[np.ndarray] = None,
                       spacing: Optional[Sequence[float]] = None) -> Optional[ClickSuggestion]:
    """The centre of the low-agreement region with the largest disagreement mass.

    Args:
        hypotheses (ndarray | Tensor): (M, H, W) masks or probabilities (or logits with
            ``logits=True``). M = 1 probabilities work too: the doubt is then the single
            mask's own (p near 0.5).
        logits (bool): the input holds logits.
        agreement_threshold (float): pixels with agreement below it are disputed; in (0.5, 1].
        valid (ndarray | None): (H, W) bool; pixels outside it are never suggested.
        spacing (sequence[float] | None): pixel size (y, x) for the distance to the region's
            boundary; None: pixels.

    Returns:
        ClickSuggestion | None: the point (x, y), its agreement and share and the region's
        size and mass; None when no pixel is disputed (all hypotheses agree).
    """
    if not 0.5 < agreement_threshold <= 1.0:
        raise ValueError(f'suggest_next_click: agreement_threshold must lie in (0.5, 1], got '
                         f'{agreement_threshold}')
    share = hypothesis_share(hypotheses, logits)
    agreement = np.maximum(share, 1.0 - share)
    disputed = agreement < agreement_threshold
    if valid is not None:
        disputed &= np.asarray(valid, bool)
    if not disputed.any():
        return None
    regions, count = ndimage.label(disputed, ndimage.generate_binary_structure(2, 1))
    ids = np.arange(1, count + 1)
    masses = np.asarray(ndimage.sum(1.0 - agreement, regions, ids))
    best = int(ids[np.argmax(masses)])  # ties: the first region in raster order
    region = regions == best
    row, col = region_centre(region, spacing)
    return ClickSuggestion(point=index_to_xyz((row, col)), agreement=float(agreement[row, col]),
                           share=float(share[row, col]), region_size=int(region.sum()),
                           region_mass=float(masses[best - 1]))


def region_centre(region: np.ndarray, spacing: Optional[Sequence[float]] = None) -> tuple:
    """The pixel of a region farthest from its boundary (the array's edge counting as
    boundary); among equally deep pixels, the one nearest their mean position, so a thin
    band's centre is its middle. Returns (row, col)."""
    depth = ndimage.distance_transform_edt(np.pad(region, 1), sampling=spacing)[1:-1, 1:-1]
    deepest = np.argwhere(depth == depth.max())
    nearest = np.argmin(((deepest - deepest.mean(0)) ** 2).sum(1))
    return tuple(int(v) for v in deepest[nearest])

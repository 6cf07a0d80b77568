"""Area under a click curve: a score (DSC, NSD) after each step of an interactive session."""
from typing import Sequence

import numpy as np


def click_curve_auc(scores: Sequence[float], clicks_only: bool = True,
                    normalise: bool = False) -> float:
    """Trapezoidal area under per-step scores, one unit of x per click.

    The CVPR 2025 interactive challenge (SegFM3D) scores ``DSC_AUC`` / ``NSD_AUC`` as the
    trapezoid over the click steps only (the box step is optional there), unit spacing and not
    normalised: with 5 clicks that is 4 intervals, so the AUC lies in [0, 4]
    (``clicks_only=True, normalise=False``, the default).

    Args:
        scores (sequence[float]): (S,) the score after step 0 (the box) and each click.
        clicks_only (bool): leave out step 0 (the challenge's rule); False integrates from the
            box step.
        normalise (bool): divide by the number of intervals, so the AUC is the mean height of
            the curve, in the scores' range ([0, 1]).

    Returns:
        float: the area; NaN when fewer than two points remain.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if clicks_only:
        values = values[1:]
    if len(values) < 2:
        return float('nan')
    area = float(np.sum((values[1:] + values[:-1]) / 2.0))
    return area / (len(values) - 1) if normalise else area

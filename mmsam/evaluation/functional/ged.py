"""Set metrics of ambiguous segmentation: GED, majority-vote Dice, best-match Dice, diversity.

All functions take binary masks as numpy arrays (bool or 0/1 integers); a set of masks is
stacked on the first axis, e.g. annotations (K, H, W) and predictions (M, H, W). Any number of
trailing spatial axes works: masks are flattened.

Definitions follow SeqSAM (Sec. 3.1, eq. 2) with d(a, b) = 1 - IoU(a, b). Dice-type scores are
fractions in [0, 1].
"""
import numpy as np


def _check_set(masks, name):
    """Check that ``masks`` is a non-empty (N, ...) stack of binary masks; return it as array."""
    masks = np.asarray(masks)
    if masks.ndim < 2:
        raise ValueError(f'{name} must be a (N, H, W) stack of masks, got shape {masks.shape}')
    if masks.shape[0] == 0:
        raise ValueError(f'{name} is an empty set (shape {masks.shape}); GED and Dice need at '
                         f'least one mask')
    if masks.dtype != bool and not np.isin(masks, (0, 1)).all():
        raise ValueError(f'{name} must be binary (bool or 0/1), got values '
                         f'{np.unique(masks)[:5]}...; threshold the masks first')
    return masks


def _flatten(masks):
    """Flatten a checked (N, ...) stack of binary masks to a (N, P) float64 array."""
    # float64 keeps the pixel counts of the matrix products exact for any realistic size.
    return masks.reshape(masks.shape[0], -1).astype(np.float64)


def _pair_sets(a, b):
    """Flatten two mask stacks with the same mask shape to (K, P) and (M, P) float64 arrays."""
    a, b = _check_set(a, 'a'), _check_set(b, 'b')
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f'the two mask sets differ in mask shape: {a.shape[1:]} vs '
                         f'{b.shape[1:]}')
    return _flatten(a), _flatten(b)


def pairwise_iou_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - IoU between every mask of one set and every mask of another.

    Two empty masks have distance 0 (they agree perfectly); an empty and a non-empty mask have
    distance 1.

    Args:
        a (ndarray): (K, H, W) binary masks.
        b (ndarray): (M, H, W) binary masks.

    Returns:
        ndarray: (K, M) float64 distances in [0, 1].
    """
    a, b = _pair_sets(a, b)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    iou = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    return 1.0 - iou


def iou_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - IoU of two binary masks; 0 for two empty masks, 1 for empty vs non-empty.

    Args:
        a (ndarray): (H, W) binary mask.
        b (ndarray): (H, W) binary mask.

    Returns:
        float: the distance in [0, 1].
    """
    return float(pairwise_iou_distance(np.asarray(a)[None], np.asarray(b)[None])[0, 0])


def generalized_energy_distance(annotations: np.ndarray, predictions: np.ndarray) -> float:
    """Squared generalised energy distance (SeqSAM eq. 2) between annotations and predictions.

    ``GED = 2 E[d(y, ŷ)] - E[d(y, y')] - E[d(ŷ, ŷ')]`` with d = 1 - IoU, each expectation
    the plain mean over the empirical sets:

    - ``E[d(y, ŷ)]``: all K·M (annotation, prediction) pairs;
    - ``E[d(y, y')]``: all K² ordered annotation pairs, self-pairs (y, y) included;
    - ``E[d(ŷ, ŷ')]``: all M² ordered prediction pairs, self-pairs included.

    This is the D²_GED of the Probabilistic U-Net / PHiSeg evaluations (no square root). With
    self-pairs included it is the energy distance of the two empirical distributions, so it is
    0 whenever they are equal (e.g. predictions are the annotations, in any order, or each
    repeated the same number of times). A deterministic model (M identical outputs) has
    ``E[d(ŷ, ŷ')] = 0``.

    Args:
        annotations (ndarray): (K, H, W) binary masks.
        predictions (ndarray): (M, H, W) binary masks.

    Returns:
        float: the GED (lower is better).
    """
    cross = pairwise_iou_distance(annotations, predictions).mean()
    within_gt = pairwise_iou_distance(annotations, annotations).mean()
    within_pred = pairwise_iou_distance(predictions, predictions).mean()
    return float(2.0 * cross - within_gt - within_pred)


def majority_vote(predictions: np.ndarray) -> np.ndarray:
    """Pixel-wise majority vote of a set of masks; an exact half (a tie) is background.

    Args:
        predictions (ndarray): (M, H, W) binary masks.

    Returns:
        ndarray: (H, W) bool mask, True where more than M / 2 predictions are foreground.
    """
    predictions = _check_set(predictions, 'predictions')
    votes = predictions.astype(bool).sum(0)
    return 2 * votes > predictions.shape[0]


def dice(a: np.ndarray, b: np.ndarray, empty_score: float = 0.0) -> float:
    """Dice coefficient 2|a ∩ b| / (|a| + |b|) of two binary masks.

    Args:
        a (ndarray): (H, W) binary mask.
        b (ndarray): (H, W) binary mask.
        empty_score (float): the score when both masks are empty (0/0). Default 0, as in the
            evaluation behind SeqSAM's Table 1; 1 treats agreeing on "nothing there" as perfect.

    Returns:
        float: the Dice in [0, 1].
    """
    return float(_pairwise_dice(np.asarray(a)[None], np.asarray(b)[None], empty_score)[0, 0])


def _pairwise_dice(a, b, empty_score):
    """(K, M) Dice between the masks of two sets; ``empty_score`` where both are empty."""
    a, b = _pair_sets(a, b)
    inter = a @ b.T
    total = a.sum(1)[:, None] + b.sum(1)[None, :]
    return np.divide(2.0 * inter, total, out=np.full_like(inter, float(empty_score)),
                     where=total > 0)


def d_avg(annotations: np.ndarray, predictions: np.ndarray, empty_score: float = 0.0) -> float:
    """D_avg of SeqSAM: Dice of the predictions' majority vote with each annotation, averaged.

    Args:
        annotations (ndarray): (K, H, W) binary masks.
        predictions (ndarray): (M, H, W) binary masks; aggregated by :func:`majority_vote`.
        empty_score (float): Dice of an empty vote against an empty annotation. Default 0
            (the convention behind SeqSAM's Table 1 numbers, which penalises every image whose
            annotation is empty whatever is predicted); 1 scores that agreement as perfect.

    Returns:
        float: the mean over the K annotations, in [0, 1].
    """
    vote = majority_vote(predictions)
    return float(_pairwise_dice(annotations, vote[None], empty_score).mean())


def d_max(annotations: np.ndarray, predictions: np.ndarray, empty_score: float = 0.0) -> float:
    """D_max as the official SeqSAM code's ``dice_max``: each prediction's best annotation.

    ``D_max = mean_m max_k Dice(ŷ_m, y_k)`` over the M predictions: it rewards every hypothesis
    being close to some reader, and falls when a hypothesis fits nobody (for the oracle "does
    some hypothesis cover each reader" read, see :func:`d_max_per_annotation`).

    Args:
        annotations (ndarray): (K, H, W) binary masks.
        predictions (ndarray): (M, H, W) binary masks.
        empty_score (float): Dice of two empty masks, as in :func:`d_avg`. Default 0 (the
            official code divides 0 by 0 there, which makes the image's score NaN).

    Returns:
        float: the mean over predictions of the best Dice, in [0, 1].
    """
    return float(_pairwise_dice(annotations, predictions, empty_score).max(0).mean())


def d_max_per_annotation(annotations: np.ndarray, predictions: np.ndarray,
                         empty_score: float = 0.0) -> float:
    """Best-match Dice per annotation: for each annotation the Dice of its best hypothesis.

    ``mean_k max_m Dice(y_k, ŷ_m)`` over the K annotations: the oracle ("best of M") score of
    multiple-choice learning, which rewards covering every annotator's mode and does not fall
    when extra hypotheses are added (max over a larger set).

    Args:
        annotations (ndarray): (K, H, W) binary masks.
        predictions (ndarray): (M, H, W) binary masks.
        empty_score (float): Dice of two empty masks, as in :func:`d_avg`. Default 0.

    Returns:
        float: the mean over annotations of the best Dice, in [0, 1].
    """
    return float(_pairwise_dice(annotations, predictions, empty_score).max(1).mean())


def diversity(predictions: np.ndarray, self_pairs: bool = True) -> float:
    """Mean 1 - IoU between the hypotheses.

    With ``self_pairs=True`` (default, as the official SeqSAM code and GED's prediction term)
    the mean runs over all M² ordered pairs, the M zero self-distances included, so it equals
    ``E[d(ŷ, ŷ')]`` of :func:`generalized_energy_distance`; with ``False`` over the M·(M-1)
    distinct ordered pairs (larger by the factor M / (M - 1)). Both are 0 when M = 1.

    Args:
        predictions (ndarray): (M, H, W) binary masks.
        self_pairs (bool): include the pairs (ŷ_m, ŷ_m).

    Returns:
        float: the mean pairwise distance in [0, 1] (higher is more diverse).
    """
    dist = pairwise_iou_distance(predictions, predictions)
    m = dist.shape[0]
    if m < 2:
        return 0.0
    # The diagonal d(ŷ, ŷ) is 0, so the sum over distinct pairs is the full sum.
    return float(dist.sum() / (m * m if self_pairs else m * (m - 1)))

"""Which slices of a case to draw: the ones where the most (and the smallest) structures are,
spread out, or evenly spaced around the middle. Used by the test-time pictures
(``SliceVisualizationHook``) and by ``tools/infer.py``'s pictures."""
import numpy as np

SLICE_CHOICES = ('most_classes', 'middle')


def slice_scores(label):
    """Per slice: (number of foreground classes, voxels of its smallest foreground class).

    Args:
        label (ndarray): (D, H, W) class ids.

    Returns:
        ndarray: (D, 2) int64.
    """
    flat = label.reshape(label.shape[0], -1).astype(np.int64)
    num_classes = int(flat.max()) + 1 if flat.size else 1
    counts = np.stack([np.bincount(row, minlength=num_classes) for row in flat])[:, 1:]
    present = counts > 0
    big = np.iinfo(np.int64).max
    smallest = np.where(present, counts, big).min(axis=1, initial=big)
    smallest[~present.any(axis=1)] = 0
    return np.stack([present.sum(axis=1), smallest], axis=1)


def choose_slices(scores, indices, num, choice='most_classes', depth=None):
    """Pick ``num`` slice indices of one case.

    'most_classes': highest (number of foreground classes, size of the smallest of them) --
    slices where the small structures are and are visible -- spread out: at most one per
    ``depth / (2 * num)`` neighbouring slices while others remain. 'middle': ``num`` evenly
    spaced slices around the middle of the case (``depth`` needed).

    Args:
        scores (ndarray): (N, 2) :func:`slice_scores` of the candidate slices.
        indices (Sequence[int]): their slice indices.
        num (int): how many to pick.
        choice (str): 'most_classes' or 'middle'.
        depth (int, optional): number of slices in the case.

    Returns:
        list[int]: sorted chosen slice indices (fewer if there are fewer candidates).
    """
    indices = [int(i) for i in indices]
    if choice == 'middle':
        targets = {min(depth - 1, int((i + 1) * depth / (num + 1))) for i in range(num)}
        return sorted(i for i in indices if i in targets)
    order = sorted(range(len(indices)), key=lambda k: (-scores[k][0], -scores[k][1],
                                                       indices[k]))
    separation = max(1, (depth or (max(indices) + 1 if indices else 1)) // (2 * num))
    chosen = []
    for k in order:
        if len(chosen) == num:
            break
        if all(abs(indices[k] - c) >= separation for c in chosen):
            chosen.append(indices[k])
    for k in order:  # not enough far-apart candidates: the best of the others
        if len(chosen) == num:
            break
        if indices[k] not in chosen:
            chosen.append(indices[k])
    return sorted(chosen)

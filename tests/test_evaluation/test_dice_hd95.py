"""Tests of the TransUNet/SAMed Dice/HD95 functions against hand values and brute force."""
import numpy as np
import pytest

from mmsam.evaluation.functional import dice_hd95, per_class_dice_hd95


def brute_force_hd95(pred, gt, spacing):
    """HD95 from explicit face-neighbour surfaces and all pairwise surface distances."""
    def surface_coords(mask):
        padded = np.pad(mask, 1)
        inner = tuple(slice(1, -1) for _ in range(mask.ndim))
        all_neighbours_in = np.ones_like(mask)
        for axis in range(mask.ndim):
            for step in (-1, 1):
                all_neighbours_in &= np.roll(padded, step, axis=axis)[inner]
        return np.argwhere(mask & ~all_neighbours_in) * np.asarray(spacing, float)

    a, b = surface_coords(pred), surface_coords(gt)
    pairwise = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return np.percentile(np.concatenate([pairwise.min(1), pairwise.min(0)]), 95)


def random_mask(rng, shape, density):
    mask = rng.random(shape) < density
    mask.flat[rng.integers(mask.size)] = True  # never empty
    return mask


@pytest.mark.parametrize('pred_any,gt_any,expected', [
    (False, False, (0.0, 0.0)),
    (False, True, (0.0, 0.0)),
    (True, False, (1.0, 0.0)),
])
def test_empty_mask_convention(pred_any, gt_any, expected):
    pred, gt = np.zeros((5, 6), np.uint8), np.zeros((5, 6), np.uint8)
    pred[1, 1], gt[3, 4] = pred_any, gt_any
    assert dice_hd95(pred, gt) == expected
    assert dice_hd95(pred[None], gt[None], spacing=(2.0, 1.0, 1.0)) == expected


def test_dice_by_hand():
    pred, gt = np.zeros((6, 6), bool), np.zeros((6, 6), bool)
    pred[0:2, 0:2] = True  # 4 pixels
    gt[1:3, 0:3] = True  # 6 pixels, 2 shared with pred
    dice, _ = dice_hd95(pred, gt)
    assert dice == pytest.approx(2 * 2 / (4 + 6))
    assert dice_hd95(gt.astype(np.int64) * 3, gt) == (1.0, 0.0)  # any non-zero is foreground


def test_hd95_by_hand_with_spacing():
    pred, gt = np.zeros((7, 9), bool), np.zeros((7, 9), bool)
    pred[2, 2], gt[2, 5] = True, True
    assert dice_hd95(pred, gt) == (0.0, 3.0)
    assert dice_hd95(pred, gt, spacing=(4.0, 0.5)) == (0.0, 1.5)
    pred[5, 2] = True  # surface distances: pred->gt {3, 3*sqrt(2)}, gt->pred {3}
    expected = np.percentile([3.0, 3.0 * np.sqrt(2), 3.0], 95)
    assert dice_hd95(pred, gt)[1] == pytest.approx(expected)


@pytest.mark.parametrize('shape,spacing', [
    ((12, 14), None),
    ((12, 14), (0.7, 1.9)),
    ((6, 9, 10), None),
    ((6, 9, 10), (3.0, 0.8, 0.6)),
])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_hd95_matches_brute_force(shape, spacing, seed):
    rng = np.random.default_rng(seed)
    pred, gt = random_mask(rng, shape, 0.3), random_mask(rng, shape, 0.5)
    dice, hd = dice_hd95(pred, gt, spacing)
    expected = brute_force_hd95(pred, gt, spacing or (1.0,) * len(shape))
    assert hd == pytest.approx(expected, rel=1e-9)
    assert hd > 0
    assert dice == pytest.approx(2 * (pred & gt).sum() / (pred.sum() + gt.sum()))


def test_hd95_unchanged_by_empty_margin():
    rng = np.random.default_rng(3)
    pred, gt = random_mask(rng, (5, 6, 7), 0.4), random_mask(rng, (5, 6, 7), 0.4)
    big_pred, big_gt = np.zeros((9, 12, 10), bool), np.zeros((9, 12, 10), bool)
    big_pred[2:7, 3:9, 1:8], big_gt[2:7, 3:9, 1:8] = pred, gt
    # An interior copy has a surface where the original touched the array edge: same either way.
    assert dice_hd95(big_pred, big_gt, (2.0, 1.0, 0.5)) == pytest.approx(
        dice_hd95(pred, gt, (2.0, 1.0, 0.5)))


def test_per_class_dice_hd95():
    rng = np.random.default_rng(4)
    pred, gt = rng.integers(0, 3, (4, 8, 8)), rng.integers(0, 3, (4, 8, 8))
    gt[gt == 2] = 3  # class 2 only predicted, class 3 only in gt, class 4 in neither
    spacing = (2.5, 1.0, 1.0)
    scores = per_class_dice_hd95(pred, gt, num_classes=5, spacing=spacing)
    assert scores.shape == (4, 2)
    for c in range(1, 5):
        assert tuple(scores[c - 1]) == dice_hd95(pred == c, gt == c, spacing)
    assert 0 < scores[0, 0] < 1 and scores[0, 1] > 0
    assert scores[1:].tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='shapes differ'):
        dice_hd95(np.ones((3, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match='spacing'):
        dice_hd95(np.ones((3, 3)), np.ones((3, 3)), spacing=(1.0, 1.0, 1.0))


# nnU-Net convention: Dice = 2TP / (2TP + FP + FN), NaN when the class is absent from both.
@pytest.mark.parametrize('pred_any,gt_any,expected_dice', [
    (False, False, np.nan),  # absent from both: NaN, left out of nnU-Net's nanmean
    (True, False, 0.0),  # false positive on an absent class
    (False, True, 0.0),  # missed class
])
def test_nnunet_empty_mask_convention(pred_any, gt_any, expected_dice):
    pred, gt = np.zeros((5, 6), np.uint8), np.zeros((5, 6), np.uint8)
    pred[1, 1], gt[3, 4] = pred_any, gt_any
    for args in ((pred, gt), (pred[None], gt[None], (2.0, 1.0, 1.0))):
        dice, hd = dice_hd95(*args, convention='nnunet')
        np.testing.assert_equal(dice, expected_dice)
        assert np.isnan(hd)  # HD95 is undefined with an empty mask


def test_nnunet_dice_and_hd95_by_hand():
    pred, gt = np.zeros((7, 9), bool), np.zeros((7, 9), bool)
    pred[0:2, 0:2] = True  # 4 pixels: TP 2, FP 2
    gt[1:3, 0:3] = True  # 6 pixels: FN 4
    dice, hd = dice_hd95(pred, gt, convention='nnunet')
    assert dice == pytest.approx(2 * 2 / (2 * 2 + 2 + 4))
    assert hd == dice_hd95(pred, gt)[1] > 0  # both non-empty: the same HD95 as TransUNet's
    pred, gt = np.zeros((7, 9), bool), np.zeros((7, 9), bool)
    pred[2, 2], gt[2, 5] = True, True
    assert dice_hd95(pred, gt, spacing=(4.0, 0.5), convention='nnunet') == (0.0, 1.5)


@pytest.mark.parametrize('convention', ['transunet', 'nnunet'])
def test_without_hd95_returns_nan(convention):
    rng = np.random.default_rng(5)
    pred, gt = random_mask(rng, (6, 7), 0.4), random_mask(rng, (6, 7), 0.4)
    dice, hd = dice_hd95(pred, gt, convention=convention, with_hd95=False)
    assert dice == dice_hd95(pred, gt, convention=convention)[0] and np.isnan(hd)
    empty = np.zeros_like(gt)
    assert dice_hd95(pred, empty, with_hd95=False, convention=convention)[0] == (
        1.0 if convention == 'transunet' else 0.0)


def test_per_class_nnunet():
    rng = np.random.default_rng(4)
    pred, gt = rng.integers(0, 3, (4, 8, 8)), rng.integers(0, 3, (4, 8, 8))
    gt[gt == 2] = 3  # class 2 only predicted, class 3 only in gt, class 4 in neither
    scores = per_class_dice_hd95(pred, gt, num_classes=5, convention='nnunet')
    assert 0 < scores[0, 0] < 1 and scores[0, 1] > 0
    np.testing.assert_equal(scores[1:], [[0.0, np.nan], [0.0, np.nan], [np.nan, np.nan]])
    fast = per_class_dice_hd95(pred, gt, num_classes=5, convention='nnunet', with_hd95=False)
    np.testing.assert_equal(fast[:, 0], scores[:, 0])
    assert np.isnan(fast[:, 1]).all()


def test_unknown_convention_raises():
    with pytest.raises(ValueError, match="convention='nnUNet'"):
        dice_hd95(np.ones((3, 3)), np.ones((3, 3)), convention='nnUNet')

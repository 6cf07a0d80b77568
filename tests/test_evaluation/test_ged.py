"""GED, D_avg, D_max and diversity against brute force and hand-worked values, and GEDMetric."""
import itertools
import logging

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.evaluation.functional.ged import (d_avg, d_max, d_max_per_annotation, dice,
                                             diversity, generalized_energy_distance,
                                             iou_distance, majority_vote, pairwise_iou_distance)
from mmsam.evaluation.metrics.ged_metric import GEDMetric
from mmsam.registry import METRICS


def _masks(rows):
    """Masks written as lists of strings, '#' foreground: [['#.', '..'], ...] -> (N, H, W)."""
    return np.array([[[c == '#' for c in line] for line in m] for m in rows])


A = ['##..', '##..']
B = ['..##', '..##']
C = ['#...', '#...']
EMPTY = ['....', '....']


def _brute_iou_distance(a, b):
    inter = union = 0
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
        inter += x and y
        union += x or y
    return 0.0 if union == 0 else 1.0 - inter / union


def _brute_ged(gts, preds):
    # Every ordered pair, self-pairs included, as written in the docstring.
    cross = [_brute_iou_distance(y, p) for y in gts for p in preds]
    within_gt = [_brute_iou_distance(y, z) for y in gts for z in gts]
    within_pred = [_brute_iou_distance(p, q) for p in preds for q in preds]
    return 2 * sum(cross) / len(cross) - sum(within_gt) / len(within_gt) \
        - sum(within_pred) / len(within_pred)


def _brute_dice(a, b, empty=0.0):
    inter = total = 0
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
        inter += x and y
        total += bool(x) + bool(y)
    return empty if total == 0 else 2 * inter / total


def _brute_scores(gts, preds):
    """D_avg, D_max (official), D_max per annotation, diversity (all M^2 pairs) by loops."""
    vote = np.array([[2 * sum(bool(p[i, j]) for p in preds) > len(preds)
                      for j in range(preds.shape[2])] for i in range(preds.shape[1])])
    d_avg_ = sum(_brute_dice(y, vote) for y in gts) / len(gts)
    per_pred = [max(_brute_dice(p, y) for y in gts) for p in preds]
    per_gt = [max(_brute_dice(p, y) for p in preds) for y in gts]
    pairs = [_brute_iou_distance(p, q) for p in preds for q in preds]
    return dict(D_avg=d_avg_, D_max=sum(per_pred) / len(per_pred),
                D_max_per_annotation=sum(per_gt) / len(per_gt),
                diversity=sum(pairs) / len(pairs))


def _random_set(rng, n, shape=(6, 7), p_empty=0.3):
    masks = rng.random((n, *shape)) < rng.uniform(0.1, 0.7)
    masks[rng.random(n) < p_empty] = False
    return masks


def test_iou_distance_by_hand():
    a, b = _masks([['##', '..'], ['#.', '#.']])
    assert iou_distance(a, b) == pytest.approx(2 / 3)  # |a∩b| = 1, |a∪b| = 3
    assert iou_distance(a, a) == 0.0
    empty = np.zeros((2, 2), bool)
    assert iou_distance(empty, empty) == 0.0
    assert iou_distance(empty, a) == 1.0
    assert iou_distance(a, empty) == 1.0
    assert iou_distance(a.astype(np.uint8), b.astype(np.uint8)) == pytest.approx(2 / 3)


@pytest.mark.parametrize('k,m', [(1, 1), (1, 4), (3, 1), (4, 3), (3, 10), (5, 5)])
def test_ged_matches_brute_force(k, m):
    rng = np.random.default_rng(100 * k + m)
    for _ in range(5):
        gts, preds = _random_set(rng, k), _random_set(rng, m)
        assert generalized_energy_distance(gts, preds) == pytest.approx(
            _brute_ged(gts, preds), abs=1e-12)
        dist = pairwise_iou_distance(gts, preds)
        assert dist.shape == (k, m)
        for i, j in itertools.product(range(k), range(m)):
            assert dist[i, j] == pytest.approx(_brute_iou_distance(gts[i], preds[j]))


def test_ged_all_empty_and_mixed_empty():
    empty = np.zeros((3, 4, 4), bool)
    assert generalized_energy_distance(empty, empty[:2]) == 0.0
    full = np.ones((2, 4, 4), bool)
    # Every cross pair is empty vs non-empty (d = 1), each set is internally identical.
    assert generalized_energy_distance(empty, full) == 2.0


def test_ged_is_zero_for_equal_empirical_distributions():
    gts = _masks([A, B, C])
    # Same set in another order, and the same set with each mask repeated twice.
    assert generalized_energy_distance(gts, gts[[2, 0, 1]]) == pytest.approx(0.0, abs=1e-12)
    assert generalized_energy_distance(gts, np.concatenate([gts, gts])) == pytest.approx(
        0.0, abs=1e-12)
    # Two disjoint annotations matched exactly: 2·(2/4) - 2/4 - 2/4 = 0; an estimator that
    # dropped self-pairs would give 2·(1/2) - 1 - 1 = -1 instead.
    assert generalized_energy_distance(_masks([A, B]), _masks([B, A])) == pytest.approx(0.0)
    # Equal multisets only: predicting one of the two modes is not zero.
    assert generalized_energy_distance(_masks([A, B]), _masks([A, A])) > 0


def test_ged_by_hand_one_mode_of_two():
    # y ∈ {A, B} disjoint, ŷ = A:
    # E[d(y,ŷ)] = (0 + 1)/2, E[d(y,y')] = (0 + 1 + 1 + 0)/4, E[d(ŷ,ŷ')] = 0.
    assert generalized_energy_distance(_masks([A, B]), _masks([A])) == pytest.approx(0.5)


def test_ged_deterministic_model_has_no_prediction_spread():
    rng = np.random.default_rng(0)
    gts = _random_set(rng, 4, p_empty=0.0)
    one = _random_set(rng, 1, p_empty=0.0)
    preds = np.repeat(one, 5, axis=0)
    assert pairwise_iou_distance(preds, preds).mean() == 0.0
    cross = np.mean([_brute_iou_distance(y, one[0]) for y in gts])
    within_gt = np.mean([_brute_iou_distance(y, z) for y in gts for z in gts])
    expected = 2 * cross - within_gt
    assert generalized_energy_distance(gts, preds) == pytest.approx(expected)
    # Repeating a single output does not change GED: the empirical distribution is the same.
    assert generalized_energy_distance(gts, one) == pytest.approx(expected)


def test_ged_by_hand_partial_overlap():
    # A vs C: |A∩C| = 2, |A∪C| = 4 -> d = 1/2. y = {A}, ŷ = {A, C}.
    # 2·(0 + 1/2)/2 - 0 - (0 + 1/2 + 1/2 + 0)/4 = 1/2 - 1/4.
    assert generalized_energy_distance(_masks([A]), _masks([A, C])) == pytest.approx(0.25)


def test_majority_vote_ties_are_background():
    one, zero = np.ones((1, 1), bool), np.zeros((1, 1), bool)
    assert not majority_vote(np.stack([one, zero]))[0, 0]  # 1 of 2: tie
    assert not majority_vote(np.stack([one, one, zero, zero]))[0, 0]  # 2 of 4: tie
    assert majority_vote(np.stack([one, one, one, zero]))[0, 0]  # 3 of 4
    assert majority_vote(np.stack([one, one, zero]))[0, 0]  # 2 of 3
    assert not majority_vote(np.stack([one, zero, zero]))[0, 0]  # 1 of 3
    assert majority_vote(one[None])[0, 0] and not majority_vote(zero[None])[0, 0]
    preds = _masks([A, C, B]).astype(np.uint8)
    # Column 0 is in A and C (2 of 3), column 1 only in A, columns 2-3 only in B.
    np.testing.assert_array_equal(majority_vote(preds), _masks([C])[0])


def test_dice_by_hand_and_empty_convention():
    a, c = _masks([A, C])
    assert dice(a, c) == pytest.approx(2 * 2 / (4 + 2))
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 0.0
    assert dice(empty, empty, empty_score=1.0) == 1.0
    assert dice(empty, a, empty_score=1.0) == 0.0


def test_d_avg_majority_vote_then_mean_over_annotations():
    gts = _masks([A, C, B])
    preds = _masks([A, A, B])  # vote = A
    expected = (1.0 + 2 * 2 / 6 + 0.0) / 3
    assert d_avg(gts, preds) == pytest.approx(expected)


def test_d_avg_empty_conventions():
    empty_gts = _masks([EMPTY, EMPTY])
    empty_preds = _masks([EMPTY, EMPTY, A])  # vote is empty
    assert d_avg(empty_gts, empty_preds) == 0.0
    assert d_avg(empty_gts, empty_preds, empty_score=1.0) == 1.0
    # One empty annotation, one equal to the vote: (empty_score + 1) / 2.
    gts = _masks([EMPTY, A])
    assert d_avg(gts, _masks([A])) == pytest.approx(0.5)
    assert d_avg(gts, _masks([A]), empty_score=1.0) == pytest.approx(0.5)  # vote not empty
    # A tie (A in 1 of 2) gives an empty vote.
    assert d_avg(_masks([EMPTY]), _masks([A, EMPTY]), empty_score=1.0) == 1.0


def test_d_max_is_each_hypothesis_best_annotation_averaged_over_hypotheses():
    gts = _masks([A, B])
    preds = _masks([C, A, EMPTY])
    # Official dice_max: C's best is A (2/3), A's is A (1), EMPTY's is 0: mean 5/9. Reading
    # the best hypothesis per annotation instead gives A: 1, B: 0, mean 1/2.
    assert d_max(gts, preds) == pytest.approx(5 / 9)
    assert d_max_per_annotation(gts, preds) == pytest.approx(0.5)
    assert d_max(gts, _masks([C, A, B])) == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert d_max_per_annotation(gts, _masks([C, A, B])) == pytest.approx(1.0)
    assert d_max(_masks([C]), _masks([A, EMPTY])) == pytest.approx((2 * 2 / 6 + 0) / 2)
    assert d_max(_masks([EMPTY]), _masks([A, EMPTY])) == 0.0
    assert d_max(_masks([EMPTY]), _masks([A, EMPTY]), empty_score=1.0) == 0.5
    # A hypothesis that fits nobody lowers D_max but never the per-annotation read.
    rng = np.random.default_rng(1)
    gts, preds = _random_set(rng, 3, p_empty=0), _random_set(rng, 4, p_empty=0)
    worse = np.concatenate([preds, ~gts.any(0, keepdims=True)])
    assert d_max(gts, worse) < d_max(gts, preds)
    assert d_max_per_annotation(gts, np.concatenate([preds, _random_set(rng, 2)])) >= \
        d_max_per_annotation(gts, preds)


def test_diversity_all_pairs_and_distinct_pairs():
    assert diversity(_masks([A])) == 0.0
    assert diversity(_masks([A, A, A])) == 0.0
    # All 4 ordered pairs of {A, B}, the 2 self-pairs at 0: 2 / 4; distinct pairs: 2 / 2.
    assert diversity(_masks([A, B])) == 0.5
    assert diversity(_masks([A, B]), self_pairs=False) == 1.0
    # {A, A, B}: d(A, B) in 4 of the 9 ordered pairs, 4 of the 6 distinct ones.
    assert diversity(_masks([A, A, B])) == pytest.approx(4 / 9)
    assert diversity(_masks([A, A, B]), self_pairs=False) == pytest.approx(4 / 6)
    rng = np.random.default_rng(2)
    preds, gts = _random_set(rng, 5), _random_set(rng, 3)
    distinct = [(i, j) for i in range(5) for j in range(5) if i != j]
    assert diversity(preds, self_pairs=False) == pytest.approx(
        np.mean([_brute_iou_distance(preds[i], preds[j]) for i, j in distinct]))
    # With self-pairs it is GED's prediction term: GED + it = 2 E[d(y, ŷ)] - E[d(y, y')].
    cross = np.mean([_brute_iou_distance(y, p) for y in gts for p in preds])
    within_gt = np.mean([_brute_iou_distance(y, z) for y in gts for z in gts])
    assert generalized_energy_distance(gts, preds) + diversity(preds) == pytest.approx(
        2 * cross - within_gt)


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match='binary'):
        generalized_energy_distance(np.full((1, 2, 2), 0.5), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match='mask shape'):
        generalized_energy_distance(np.zeros((1, 2, 3), bool), np.zeros((1, 3, 2), bool))
    with pytest.raises(ValueError, match='empty set'):
        d_max(np.zeros((0, 2, 2), bool), np.zeros((1, 2, 2), bool))


def _sample(gts, preds, as_dict):
    sample = SegDataSample()
    sample.gt_annotations = PixelData(data=torch.from_numpy(gts))
    sample.pred_hypotheses = PixelData(data=torch.from_numpy(preds))
    return sample.to_dict() if as_dict else sample


def test_metric_end_to_end_over_two_batches_against_brute_force(caplog):
    rng = np.random.default_rng(3)
    cases = [(_random_set(rng, 3), _random_set(rng, m).astype(np.uint8)) for m in (1, 3, 4)]
    cases.append((_masks([EMPTY, EMPTY]), _masks([EMPTY, EMPTY])))
    cases.append((_masks([A, B, EMPTY]), _masks([A, C, A])))
    metric = METRICS.build(dict(type='GEDMetric'))
    assert isinstance(metric, GEDMetric)
    # mmengine's Evaluator passes dicts; data elements are accepted as well.
    metric.process({}, [_sample(g, p, as_dict=True) for g, p in cases[:2]])
    metric.process({}, [_sample(g, p, as_dict=False) for g, p in cases[2:]])
    assert len(metric.results) == len(cases)
    with caplog.at_level(logging.INFO):
        out = metric.evaluate(size=len(cases))
    brute = [_brute_scores(g, p.astype(bool)) for g, p in cases]
    expected = dict(GED=np.mean([_brute_ged(g, p) for g, p in cases]),
                    diversity=np.mean([b['diversity'] for b in brute]))
    for key in ('D_avg', 'D_max', 'D_max_per_annotation'):
        expected[key] = 100 * np.mean([b[key] for b in brute])
    assert set(out) == set(expected)
    for key, value in expected.items():
        assert out[key] == pytest.approx(value), key
    # The last case by hand: vote = A (2 of 3); D_avg = (1 + 0 + 0) / 3; D_max = (1 + 2/3 +
    # 1) / 3; per annotation (1 + 0 + 0) / 3; diversity: d(A, C) = 1/2 in 4 of 9 pairs.
    assert [brute[-1][k] for k in ('D_avg', 'D_max', 'D_max_per_annotation', 'diversity')] \
        == pytest.approx([1 / 3, 8 / 9, 1 / 3, 2 / 9])
    # The all-empty case scores D_avg 0 under the default and 100 with empty_dice=1.
    assert d_avg(*cases[3]) == 0.0
    metric1 = GEDMetric(empty_dice=1.0, diversity_pairs='distinct', prefix='ambig')
    metric1.process({}, [_sample(g, p, as_dict=True) for g, p in cases])
    out1 = metric1.evaluate(size=len(cases))
    assert out1['ambig/D_avg'] == pytest.approx(
        100 * np.mean([d_avg(g, p, empty_score=1.0) for g, p in cases]))
    assert out1['ambig/D_avg'] >= out['D_avg'] + 100 / len(cases) - 1e-9
    assert out1['ambig/GED'] == pytest.approx(out['GED'])
    assert out1['ambig/diversity'] == pytest.approx(np.mean(
        [diversity(p) * len(p) / (len(p) - 1) if len(p) > 1 else 0.0 for _, p in cases]))
    with pytest.raises(ValueError, match='diversity_pairs'):
        GEDMetric(diversity_pairs='self')


def test_metric_missing_field_names_it():
    metric = GEDMetric()
    sample = SegDataSample()
    sample.gt_annotations = PixelData(data=torch.zeros(2, 4, 4, dtype=torch.uint8))
    with pytest.raises(KeyError, match='pred_hypotheses.*segmentor'):
        metric.process({}, [sample.to_dict()])
    sample = SegDataSample()
    sample.pred_hypotheses = PixelData(data=torch.zeros(2, 4, 4, dtype=torch.uint8))
    with pytest.raises(KeyError, match='gt_annotations'):
        metric.process({}, [sample.to_dict()])
    sample.gt_annotations = PixelData(data=torch.zeros(2, 5, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match='resized'):
        metric.process({}, [sample.to_dict()])

import itertools

import pytest
import torch

from mmsam.models.losses import soft_dice_loss
from mmsam.registry import MODELS


def brute_force(pred, target, valid):
    """Min over every one-to-one assignment of min(M, K) pairs, mean per sample, then batch."""
    per_sample = []
    for b in range(pred.shape[0]):
        ks = [k for k in range(target.shape[1]) if valid[b, k]]
        m_all = range(pred.shape[1])
        n = min(len(m_all), len(ks))
        best = min(
            sum(soft_dice_loss(pred[b, m:m + 1], target[b, k:k + 1])[0].item()
                for m, k in zip(ms, kperm)) / n
            for ms in itertools.combinations(m_all, n) for kperm in itertools.permutations(ks, n))
        per_sample.append(best)
    return sum(per_sample) / len(per_sample)


@pytest.mark.parametrize('m,k', [(3, 3), (2, 4), (5, 3), (1, 4), (4, 1)])
def test_equals_brute_force_minimum_over_assignments(m, k):
    torch.manual_seed(m * 10 + k)
    pred = torch.randn(3, m, 5, 5) * 2
    target = (torch.rand(3, k, 5, 5) > 0.5).float()
    valid = torch.ones(3, k, dtype=torch.bool)
    loss = MODELS.build(dict(type='HungarianDiceLoss'))(pred, target, valid)
    assert loss.item() == pytest.approx(brute_force(pred, target, valid), rel=1e-5)


def test_invalid_annotations_are_left_out():
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 5, 5)
    target = (torch.rand(2, 4, 5, 5) > 0.5).float()
    valid = torch.tensor([[True, False, True, True], [False, True, False, False]])
    loss_fn = MODELS.build(dict(type='HungarianDiceLoss'))
    assert loss_fn(pred, target, valid).item() == pytest.approx(
        brute_force(pred, target, valid), rel=1e-5)
    # garbage in an invalid slot changes nothing
    target2 = target.clone()
    target2[0, 1] = 1 - target2[0, 1]
    assert loss_fn(pred, target2, valid).item() == pytest.approx(
        loss_fn(pred, target, valid).item())
    with pytest.raises(ValueError, match='sample 0'):
        loss_fn(pred, target, torch.zeros(2, 4, dtype=torch.bool))


def test_only_matched_predictions_get_gradient_when_m_exceeds_k():
    pred = torch.full((1, 3, 4, 4), -5.0)
    pred[0, 1, :2] = 5.0  # prediction 1 is the top half: the match of the only annotation
    pred.requires_grad_(True)
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, :2] = 1
    loss = MODELS.build(dict(type='HungarianDiceLoss'))(pred, target)
    loss.backward()
    assert [bool(pred.grad[0, i].abs().sum() > 0) for i in range(3)] == [False, True, False]


def brute_force_official(pred, target):
    """The official SeqSAM loss by enumeration: the permutation of min unweighted cost, then
    the costs of its empty annotations zeroed, summed and divided by K (M >= K)."""
    per_sample = []
    for b in range(pred.shape[0]):
        k = target.shape[1]
        cost = [[soft_dice_loss(pred[b, m:m + 1], target[b, j:j + 1])[0].item()
                 for j in range(k)] for m in range(pred.shape[1])]
        best = min(itertools.permutations(range(pred.shape[1]), k),
                   key=lambda ms: sum(cost[m][j] for j, m in enumerate(ms)))
        per_sample.append(sum(cost[m][j] for j, m in enumerate(best)
                              if target[b, j].sum() > 0) / k)
    return sum(per_sample) / len(per_sample)


def test_empty_annotation_is_matched_but_weighs_zero():
    torch.manual_seed(3)
    pred = torch.randn(2, 4, 5, 5) * 2
    target = (torch.rand(2, 3, 5, 5) > 0.5).float()
    target[0, 1] = 0  # a reader who marked nothing
    target[1, 0] = 0
    loss = MODELS.build(dict(type='HungarianDiceLoss'))(pred, target)
    assert loss.item() == pytest.approx(brute_force_official(pred, target), rel=1e-5)
    # ignore_empty=False trains every matched pair, the empty annotations too
    valid = torch.ones(2, 3, dtype=torch.bool)
    trained = MODELS.build(dict(type='HungarianDiceLoss', ignore_empty=False))(pred, target)
    assert trained.item() == pytest.approx(brute_force(pred, target, valid), rel=1e-5)
    assert trained.item() > loss.item()


def test_empty_annotation_absorbs_a_prediction_without_training_it():
    # Prediction 0 is empty, 1 covers the top half: the empty reader takes prediction 0, the
    # top-half reader prediction 1, and only prediction 1 is trained; the loss is its cost / 2.
    pred = torch.full((1, 2, 4, 4), -6.0)
    pred[0, 1, :2] = 6.0
    pred.requires_grad_(True)
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, :2] = 1
    loss = MODELS.build(dict(type='HungarianDiceLoss'))(pred, target)
    expected = soft_dice_loss(pred[0, 1:2].detach(), target[0, 0:1])[0] / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-3)
    loss.backward()
    assert pred.grad[0, 0].abs().sum() == 0 and pred.grad[0, 1].abs().sum() > 0
    # all readers empty: nothing to learn
    zero = MODELS.build(dict(type='HungarianDiceLoss'))(pred, torch.zeros(1, 2, 4, 4))
    assert zero.item() == 0.0

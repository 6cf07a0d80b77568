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

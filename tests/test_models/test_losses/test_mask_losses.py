import itertools

import pytest
import torch
import torch.nn.functional as F

from mmsam.models.losses import pairwise_soft_dice_loss, soft_dice_loss
from mmsam.registry import MODELS


def test_soft_dice_loss_hand_worked():
    # p = 0.5 everywhere; target [1, 1, 0, 0]: overlap 1, sum p 2, sum t 2 -> 1 - 3 / 5
    logits = torch.zeros(1, 2, 2)
    target = torch.tensor([[[1., 1.], [0., 0.]]])
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.4)
    # empty target, confident empty prediction: loss -> 0; eps keeps it finite
    assert soft_dice_loss(torch.full((1, 4), -20.), torch.zeros(1, 4)).item() < 1e-6


def test_pairwise_soft_dice_matches_one_pair_at_a_time():
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 8, 8), (torch.rand(4, 8, 8) > 0.5).float()
    pairwise = pairwise_soft_dice_loss(logits, targets)
    for m, k in itertools.product(range(3), range(4)):
        torch.testing.assert_close(pairwise[m, k], soft_dice_loss(logits[m:m + 1],
                                                                  targets[k:k + 1])[0])


def test_mask_bce_and_dice_losses():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 8, 8), (torch.rand(2, 8, 8) > 0.5).long()
    bce = MODELS.build(dict(type='MaskBCELoss', loss_weight=2.0))
    torch.testing.assert_close(bce(logits, target),
                               2 * F.binary_cross_entropy_with_logits(logits, target.float()))
    dice = MODELS.build(dict(type='MaskDiceLoss'))
    # per mask 1 - (2 sum(p t) + 1) / (sum p + sum t + 1), p = sigmoid, then the mean, loop
    # by loop
    per_mask = []
    for n in range(2):
        p, t = logits[n].sigmoid(), target[n].float()
        per_mask.append(1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1))
    torch.testing.assert_close(dice(logits, target), torch.stack(per_mask).mean())
    # hand-worked: one pixel, logit 0 (p = 0.5) on a foreground pixel: 1 - 2 / 2.5 = 0.2
    torch.testing.assert_close(dice(torch.zeros(1, 1, 1), torch.ones(1, 1, 1, dtype=torch.long)),
                               torch.tensor(0.2))
    assert (bce.loss_name, dice.loss_name) == ('loss_bce', 'loss_dice')


def _brute_force_mcl(pred, target, valid):
    per_sample = []
    for b in range(pred.shape[0]):
        per_annotation = []
        for k in range(target.shape[1]):
            if valid[b, k]:
                per_annotation.append(min(
                    soft_dice_loss(pred[b, m:m + 1], target[b, k:k + 1])[0].item()
                    for m in range(pred.shape[1])))
        per_sample.append(sum(per_annotation) / len(per_annotation))
    return sum(per_sample) / len(per_sample)


def test_multiple_choice_dice_loss_is_min_over_hypotheses_per_annotation():
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 6, 6, requires_grad=True)
    target = (torch.rand(2, 4, 6, 6) > 0.6).float()
    valid = torch.tensor([[True, True, True, True], [True, False, True, False]])
    loss_fn = MODELS.build(dict(type='MultipleChoiceDiceLoss'))
    loss = loss_fn(pred, target, valid)
    assert loss.item() == pytest.approx(_brute_force_mcl(pred, target, valid), rel=1e-5)
    # only the winners of some annotation get gradient
    loss.backward()
    cost = torch.stack([pairwise_soft_dice_loss(pred[b].detach(), target[b]) for b in range(2)])
    for b in range(2):
        winners = set(cost[b][:, valid[b]].argmin(0).tolist())
        for m in range(3):
            has_grad = pred.grad[b, m].abs().sum() > 0
            assert bool(has_grad) == (m in winners)


def test_multiple_choice_dice_loss_needs_an_annotation():
    loss_fn = MODELS.build(dict(type='MultipleChoiceDiceLoss'))
    with pytest.raises(ValueError, match='sample 1'):
        loss_fn(torch.randn(2, 3, 4, 4), torch.zeros(2, 2, 4, 4),
                torch.tensor([[True, False], [False, False]]))


def test_relaxed_winner_takes_all_weights_the_losers():
    torch.manual_seed(1)
    pred, target = torch.randn(1, 3, 6, 6), (torch.rand(1, 2, 6, 6) > 0.5).float()
    cost = pairwise_soft_dice_loss(pred[0], target[0])  # (3, 2)
    relaxed = MODELS.build(dict(type='MultipleChoiceDiceLoss', relaxation=0.1))(pred, target)
    expected = sum(0.9 * cost[:, k].min() + 0.05 * (cost[:, k].sum() - cost[:, k].min())
                   for k in range(2)) / 2
    assert relaxed.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match='relaxation'):
        MODELS.build(dict(type='MultipleChoiceDiceLoss', relaxation=1.0))


def test_multiple_choice_dice_loss_hand_worked_value():
    # Four pixels; hypotheses with probabilities 0.5 / (0.75, 0.75, 0.25, 0.25) / the reverse.
    probs = torch.tensor([[0.5] * 4, [0.75, 0.75, 0.25, 0.25], [0.25, 0.25, 0.75, 0.75]])
    pred = torch.logit(probs).reshape(1, 3, 2, 2)
    target = torch.tensor([[1., 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]]).reshape(1, 3, 2, 2)
    # Dice losses 1 - (2 sum(p t) + 1) / (sum p + sum t + 1), hypothesis x annotation:
    #   t0: 0.4, 0.2, 0.6    t1: 0.4, 0.6, 0.2    t2: 0.5, 0.375, 0.625
    loss = MODELS.build(dict(type='MultipleChoiceDiceLoss'))(pred, target)
    assert loss.item() == pytest.approx((0.2 + 0.2 + 0.375) / 3, abs=1e-6)
    # one annotation (SAM's "min over the 3 masks"): its best hypothesis only
    one = MODELS.build(dict(type='MultipleChoiceDiceLoss'))(pred, target[:, 2:])
    assert one.item() == pytest.approx(0.375, abs=1e-6)
    # relaxed WTA, eps_r = 0.1: winner 0.9, each loser 0.05
    relaxed = MODELS.build(dict(type='MultipleChoiceDiceLoss', relaxation=0.1))(pred, target)
    assert relaxed.item() == pytest.approx((0.23 + 0.23 + 0.39375) / 3, abs=1e-6)

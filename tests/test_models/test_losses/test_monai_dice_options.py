"""The official SeqSAM code's MONAI Dice, as mmsam's Dice options: squared denominators,
smoothing 1e-5, and MONAI's per-row reading of (N, H, W) tensors (MCL / MedSAM baselines)."""
import pytest
import torch

from mmsam.models.losses import (HungarianDiceLoss, MaskDiceLoss, MultipleChoiceDiceLoss,
                                 soft_dice_loss)
from mmsam.models.losses.mask_dice_loss import pairwise_soft_dice_loss


def monai_like(p, t, rows):
    """MONAI DiceLoss(sigmoid, squared_pred, smooth 1e-5), written out element by element: a
    (H, W) mask is one sample (whole-mask sums); with ``rows`` each row is its own Dice."""
    smooth = 1e-5
    if not rows:
        num = 2 * sum(float(a * b) for a, b in zip(p.flatten(), t.flatten())) + smooth
        den = sum(float(a * a + b * b) for a, b in zip(p.flatten(), t.flatten())) + smooth
        return 1 - num / den
    losses = []
    for pr, tr in zip(p, t):
        num = 2 * sum(float(a * b) for a, b in zip(pr, tr)) + smooth
        den = sum(float(a * a + b * b) for a, b in zip(pr, tr)) + smooth
        losses.append(1 - num / den)
    return sum(losses) / len(losses)


@pytest.fixture
def masks():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 5, generator=gen) * 3
    targets = (torch.rand(2, 6, 5, generator=gen) > 0.5).float()
    targets[1, 2] = 0  # an empty row: its Dice is smooth / smooth = 0 loss only if p is 0
    return logits, targets


@pytest.mark.parametrize('per_row', [False, True])
def test_squared_dice_matches_monai_formula(masks, per_row):
    logits, targets = masks
    got = soft_dice_loss(logits[:2], targets, 1e-5, squared_pred=True, per_row=per_row)
    expected = [monai_like(logits[i].sigmoid().double(), targets[i].double(), per_row)
                for i in range(2)]
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    pair = pairwise_soft_dice_loss(logits, targets, 1e-5, True, per_row)
    for m in range(3):
        for k in range(2):
            assert pair[m, k].item() == pytest.approx(
                monai_like(logits[m].sigmoid().double(), targets[k].double(), per_row), abs=1e-6)
    # per row is not the whole-mask Dice
    whole = soft_dice_loss(logits[:2], targets, 1e-5, squared_pred=True)
    assert per_row is False or (got - whole).abs().max() > 1e-3


def test_default_dice_is_unchanged(masks):
    logits, targets = masks
    p, t = logits[:2].sigmoid().flatten(1), targets.flatten(1)
    plain = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    torch.testing.assert_close(soft_dice_loss(logits[:2], targets), plain)
    torch.testing.assert_close(pairwise_soft_dice_loss(logits, targets)[:2].diagonal(), plain)


def test_losses_take_the_options(masks):
    logits, targets = masks
    rows = dict(eps=1e-5, squared_pred=True, per_row=True)
    per = soft_dice_loss(logits, targets[:1].expand(3, -1, -1), **{
        'eps': 1e-5, 'squared_pred': True, 'per_row': True})
    # MCL: min over the 3 hypotheses of the per-row Dice against one reader
    mcl = MultipleChoiceDiceLoss(**rows)(logits[None], targets[None, :1])
    assert mcl.item() == pytest.approx(per.min().item(), abs=1e-7)
    assert MaskDiceLoss(**rows)(logits[:1], targets[:1]).item() == pytest.approx(
        per[0].item(), abs=1e-7)


def test_hungarian_normalizer_and_batch_reduction(masks):
    logits, targets = masks
    batch = torch.stack([logits[:2], logits[1:]]), torch.stack([targets, targets])
    mean = HungarianDiceLoss(ignore_empty=False)(*batch)
    total = HungarianDiceLoss(ignore_empty=False, batch_reduction='sum')(*batch)
    assert total.item() == pytest.approx(2 * mean.item(), rel=1e-6)
    empty = targets.clone()
    empty[1] = 0
    pairs = HungarianDiceLoss(normalizer='pairs')(logits[None, :2], empty[None])
    non_empty = HungarianDiceLoss(normalizer='non_empty')(logits[None, :2], empty[None])
    assert non_empty.item() == pytest.approx(2 * pairs.item(), rel=1e-6)  # / 1 instead of / 2
    with pytest.raises(ValueError, match='empty_weighting'):
        HungarianDiceLoss(empty_weighting='matched')

import torch

from mmsam.models.losses import MultiClassDiceLoss


def test_dice_by_hand():
    # Two pixels, two classes; logits chosen so softmax gives (0.75, 0.25) and (0.25, 0.75).
    a = torch.log(torch.tensor(3.0))
    logits = torch.tensor([[[[a, -a]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    label = torch.tensor([[[0, 0]]])
    p0 = torch.tensor([0.75, 0.25])
    p1 = 1 - p0
    t0, t1 = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    dice0 = 2 * (p0 * t0).sum() / ((p0 ** 2).sum() + (t0 ** 2).sum())
    dice1 = 2 * (p1 * t1).sum() / ((p1 ** 2).sum() + (t1 ** 2).sum())
    loss = MultiClassDiceLoss(smooth=0.0)(logits, label)
    torch.testing.assert_close(loss, 1 - (dice0 + dice1) / 2)
    plain = MultiClassDiceLoss(smooth=0.0, squared=False)(logits, label)
    # class 0: 2 * 1.0 / (1.0 + 2) = 2/3; class 1: 0 / (1.0 + 0) = 0
    torch.testing.assert_close(plain, torch.tensor(1 - (2 / 3 + 0) / 2))


def test_perfect_prediction_and_ignored_pixels():
    label = torch.tensor([[[0, 1], [2, 255]]])
    logits = torch.nn.functional.one_hot(label.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 50
    logits[0, :, 1, 1] = torch.tensor([0.0, 0.0, 50.0])  # wrong, but ignored
    assert MultiClassDiceLoss()(logits, label).item() < 1e-6
    loss = MultiClassDiceLoss(loss_weight=0.8, include_background=False)
    assert loss(logits, label).item() < 1e-6

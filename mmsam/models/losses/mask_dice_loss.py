"""Soft Dice loss of binary masks (sigmoid probabilities), per mask and pairwise."""
import torch
import torch.nn as nn

from mmsam.registry import MODELS


def soft_dice_loss(logits, targets, eps=1.0, squared_pred=False, per_row=False):
    """``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)`` per mask, p = sigmoid(logits).

    Plain (not squared) denominators by default; ``eps`` smooths the ratio so that an empty
    target scores a loss that falls to 0 as the prediction empties. ``squared_pred=True`` sums
    p^2 and t^2 in the denominator, and ``per_row=True`` computes one Dice per row (over the
    last axis) and averages the rows: MONAI's ``DiceLoss(sigmoid=True, squared_pred=True)``
    (smoothing 1e-5) given (N, H, W) tensors reads them as N images of H channels, which is how
    the official SeqSAM code's MCL and MedSAM baselines call it (see :func:`dice_terms`).

    Args:
        logits (Tensor): (N, ...) logits.
        targets (Tensor): (N, ...) of the same shape, values in [0, 1].
        eps (float): smoothing added to numerator and denominator.
        squared_pred (bool): squared denominators.
        per_row (bool): Dice per row of the last axis, averaged over the rows.

    Returns:
        Tensor: (N,) losses.
    """
    if not (squared_pred or per_row):
        probs = logits.sigmoid().flatten(1)
        targets = targets.to(probs.dtype).flatten(1)
        overlap = (probs * targets).sum(1)
        return 1 - (2 * overlap + eps) / (probs.sum(1) + targets.sum(1) + eps)
    probs, targets = dice_terms(logits, targets, per_row)
    overlap = (probs * targets).sum(-1)
    power = 2 if squared_pred else 1
    denominator = probs.pow(power).sum(-1) + targets.pow(power).sum(-1)
    return (1 - (2 * overlap + eps) / (denominator + eps)).mean(-1)


def dice_terms(logits, targets, per_row):
    """Probabilities and targets as (N, R, L): R rows of L values each Dice is summed over.

    ``per_row=False``: one row, the whole mask. ``per_row=True``: the rows of the last axis
    (MONAI's reduction over the spatial axes of a (N, H, W) tensor read as N images with H
    channels and one spatial axis W).
    """
    probs = logits.sigmoid()
    targets = targets.to(probs.dtype)
    if per_row:
        return (probs.reshape(len(probs), -1, probs.shape[-1]),
                targets.reshape(len(targets), -1, targets.shape[-1]))
    return probs.reshape(len(probs), 1, -1), targets.reshape(len(targets), 1, -1)


def pairwise_soft_dice_loss(logits, targets, eps=1.0, squared_pred=False, per_row=False):
    """:func:`soft_dice_loss` of every prediction with every target.

    Args:
        logits (Tensor): (M, ...) logits.
        targets (Tensor): (K, ...) masks with the same trailing shape.
        eps (float): smoothing.
        squared_pred (bool), per_row (bool): see :func:`soft_dice_loss`.

    Returns:
        Tensor: (M, K) losses; entry (m, k) = soft_dice_loss(logits[m], targets[k]).
    """
    if not (squared_pred or per_row):
        probs = logits.sigmoid().flatten(1)
        targets = targets.to(probs.dtype).flatten(1)
        overlap = probs @ targets.t()
        return 1 - (2 * overlap + eps) / (probs.sum(1)[:, None] + targets.sum(1)[None] + eps)
    probs, targets = dice_terms(logits, targets, per_row)
    overlap = torch.einsum('mrl,krl->mkr', probs, targets)
    power = 2 if squared_pred else 1
    denominator = (probs.pow(power).sum(-1)[:, None] + targets.pow(power).sum(-1)[None])
    return (1 - (2 * overlap + eps) / (denominator + eps)).mean(-1)


def pairwise_costs_per_sample(pred_logits, target, target_valid, eps, loss_name,
                              squared_pred=False, per_row=False):
    """:func:`pairwise_soft_dice_loss` of each sample's predictions and valid annotations.

    Args:
        pred_logits (Tensor): (B, M, H, W) logits.
        target (Tensor): (B, K, H, W) annotations in {0, 1}.
        target_valid (Tensor | None): (B, K) bool, False for padding entries (None: all valid).
        eps (float): Dice smoothing.
        loss_name (str): the calling loss, named in the error.
        squared_pred (bool), per_row (bool): see :func:`soft_dice_loss`.

    Returns:
        list[Tensor]: B cost matrices of shape (M, K_valid_b).
    """
    if target_valid is None:
        target_valid = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
    costs = []
    for i, (logits, masks, valid) in enumerate(zip(pred_logits, target, target_valid)):
        if not valid.any():
            raise ValueError(f'{loss_name}: sample {i} of the batch has no valid annotation')
        costs.append(pairwise_soft_dice_loss(logits, masks[valid], eps, squared_pred, per_row))
    return costs


@MODELS.register_module()
class MaskDiceLoss(nn.Module):
    """Mean :func:`soft_dice_loss` over a batch of binary masks (MedSAM's Dice term).

    Args:
        eps (float): smoothing.
        squared_pred (bool), per_row (bool): see :func:`soft_dice_loss`; the official SeqSAM
            code's MedSAM baseline (MONAI ``DiceLoss(sigmoid=True, squared_pred=True)`` on
            (N, H, W)) is ``eps=1e-5, squared_pred=True, per_row=True``.
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, eps=1.0, squared_pred=False, per_row=False, loss_weight=1.0,
                 loss_name='loss_dice'):
        super().__init__()
        self.eps, self.loss_weight, self._loss_name = eps, loss_weight, loss_name
        self.squared_pred, self.per_row = bool(squared_pred), bool(per_row)

    def forward(self, logits, target):
        """Args: logits (Tensor): (N, H, W) logits; target (Tensor): (N, H, W) in {0, 1}.

        Returns:
            Tensor: scalar loss.
        """
        return self.loss_weight * soft_dice_loss(logits, target, self.eps, self.squared_pred,
                                                 self.per_row).mean()

    @property
    def loss_name(self):
        return self._loss_name

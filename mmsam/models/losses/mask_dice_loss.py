"""Soft Dice loss of binary masks (sigmoid probabilities), per mask and pairwise."""
import torch
import torch.nn as nn

from mmsam.registry import MODELS


def soft_dice_loss(logits, targets, eps=1.0):
    """``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)`` per mask, p = sigmoid(logits).

    Plain (not squared) denominators; ``eps`` smooths the ratio so that an empty target scores
    a loss that falls to 0 as the prediction empties.

    Args:
        logits (Tensor): (N, ...) logits.
        targets (Tensor): (N, ...) of the same shape, values in [0, 1].
        eps (float): smoothing added to numerator and denominator.

    Returns:
        Tensor: (N,) losses.
    """
    probs = logits.sigmoid().flatten(1)
    targets = targets.to(probs.dtype).flatten(1)
    overlap = (probs * targets).sum(1)
    return 1 - (2 * overlap + eps) / (probs.sum(1) + targets.sum(1) + eps)


def pairwise_soft_dice_loss(logits, targets, eps=1.0):
    """:func:`soft_dice_loss` of every prediction with every target.

    Args:
        logits (Tensor): (M, ...) logits.
        targets (Tensor): (K, ...) masks with the same trailing shape.
        eps (float): smoothing.

    Returns:
        Tensor: (M, K) losses; entry (m, k) = soft_dice_loss(logits[m], targets[k]).
    """
    probs = logits.sigmoid().flatten(1)
    targets = targets.to(probs.dtype).flatten(1)
    overlap = probs @ targets.t()
    return 1 - (2 * overlap + eps) / (probs.sum(1)[:, None] + targets.sum(1)[None] + eps)


def pairwise_costs_per_sample(pred_logits, target, target_valid, eps, loss_name):
    """:func:`pairwise_soft_dice_loss` of each sample's predictions and valid annotations.

    Args:
        pred_logits (Tensor): (B, M, H, W) logits.
        target (Tensor): (B, K, H, W) annotations in {0, 1}.
        target_valid (Tensor | None): (B, K) bool, False for padding entries (None: all valid).
        eps (float): Dice smoothing.
        loss_name (str): the calling loss, named in the error.

    Returns:
        list[Tensor]: B cost matrices of shape (M, K_valid_b).
    """
    if target_valid is None:
        target_valid = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
    costs = []
    for i, (logits, masks, valid) in enumerate(zip(pred_logits, target, target_valid)):
        if not valid.any():
            raise ValueError(f'{loss_name}: sample {i} of the batch has no valid annotation')
        costs.append(pairwise_soft_dice_loss(logits, masks[valid], eps))
    return costs


@MODELS.register_module()
class MaskDiceLoss(nn.Module):
    """Mean :func:`soft_dice_loss` over a batch of binary masks (MedSAM's Dice term).

    Args:
        eps (float): smoothing.
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, eps=1.0, loss_weight=1.0, loss_name='loss_dice'):
        super().__init__()
        self.eps, self.loss_weight, self._loss_name = eps, loss_weight, loss_name

    def forward(self, logits, target):
        """Args: logits (Tensor): (N, H, W) logits; target (Tensor): (N, H, W) in {0, 1}.

        Returns:
            Tensor: scalar loss.
        """
        return self.loss_weight * soft_dice_loss(logits, target, self.eps).mean()

    @property
    def loss_name(self):
        return self._loss_name

"""Dice loss of predictions matched one-to-one to annotations (Hungarian matching)."""
import torch
import torch.nn as nn
from scipy.optimize import linear_sum_assignment

from mmsam.registry import MODELS
from .mask_dice_loss import pairwise_costs_per_sample


def hungarian_match(cost):
    """Optimal one-to-one assignment minimising the total cost.

    Args:
        cost (Tensor): (M, K) pairwise costs.

    Returns:
        tuple[Tensor, Tensor]: prediction and target indices of the min(M, K) matched pairs.
    """
    rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
    device = cost.device
    return torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device)


@MODELS.register_module()
class HungarianDiceLoss(nn.Module):
    """SeqSAM's set loss (eq. 1): Dice loss under the best one-to-one prediction/annotation match.

    Per sample, the (M, K_valid) cost matrix of soft Dice losses between sigmoid probabilities
    and the valid annotations is computed without gradient (plain, not squared, denominators:
    ``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)``, ``eps`` = 1 by default) and solved
    with scipy's ``linear_sum_assignment``; the sample's loss is the mean Dice loss over its
    min(M, K_valid) matched pairs, recomputed with gradient. The batch loss is the mean over
    samples. With M > K only the matched predictions get gradient; with M < K only the best
    M annotations are used.

    Args:
        eps (float): Dice smoothing.
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, eps=1.0, loss_weight=1.0, loss_name='loss_hungarian_dice'):
        super().__init__()
        self.eps, self.loss_weight, self._loss_name = eps, loss_weight, loss_name

    def forward(self, pred_logits, target, target_valid=None):
        """Args:
            pred_logits (Tensor): (B, M, H, W) logits.
            target (Tensor): (B, K, H, W) annotations in {0, 1}.
            target_valid (Tensor, optional): (B, K) bool, False for padding entries.

        Returns:
            Tensor: scalar loss.
        """
        losses = []
        for cost in pairwise_costs_per_sample(pred_logits, target, target_valid, self.eps,
                                              'HungarianDiceLoss'):
            rows, cols = hungarian_match(cost)
            losses.append(cost[rows, cols].mean())
        return self.loss_weight * torch.stack(losses).mean()

    @property
    def loss_name(self):
        return self._loss_name

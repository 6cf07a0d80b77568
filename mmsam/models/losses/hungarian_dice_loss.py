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

    Per sample, the (M, K) cost matrix of soft Dice losses between sigmoid probabilities and
    the K valid (non-padding) annotations is computed without gradient (plain, not squared,
    denominators: ``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)``, ``eps`` = 1 by
    default) and solved with scipy's ``linear_sum_assignment``. The sample's loss is::

        sum over the min(M, K) matched pairs (m, k) of  w_k * cost[m, k]  /  min(M, K)

    recomputed with gradient, and the batch loss is the mean over samples. With
    ``ignore_empty=True`` (the default, as the official SeqSAM code) w_k = 0 for an empty
    annotation (a reader who marked nothing) and 1 otherwise: empty annotations still take part
    in the matching, so they absorb the predictions that fit no reader, but no prediction is
    trained towards an empty mask; the sum is still divided by the number of pairs (K when
    M >= K, as the official divides by K). ``ignore_empty=False`` trains every matched pair
    (w_k = 1). With M > K only the matched predictions get gradient; with M < K only the best
    M annotations are used.

    Args:
        eps (float): Dice smoothing.
        ignore_empty (bool): weight the matched losses of empty annotations by zero.
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, eps=1.0, ignore_empty=True, loss_weight=1.0,
                 loss_name='loss_hungarian_dice'):
        super().__init__()
        self.eps, self.ignore_empty = eps, bool(ignore_empty)
        self.loss_weight, self._loss_name = loss_weight, loss_name

    def forward(self, pred_logits, target, target_valid=None):
        """Args:
            pred_logits (Tensor): (B, M, H, W) logits.
            target (Tensor): (B, K, H, W) annotations in {0, 1} (empty masks allowed).
            target_valid (Tensor, optional): (B, K) bool, False for padding entries.

        Returns:
            Tensor: scalar loss.
        """
        if target_valid is None:
            target_valid = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
        costs = pairwise_costs_per_sample(pred_logits, target, target_valid, self.eps,
                                          'HungarianDiceLoss')
        losses = []
        for cost, masks, valid in zip(costs, target, target_valid):
            rows, cols = hungarian_match(cost)
            weight = torch.ones(len(cols), dtype=cost.dtype, device=cost.device)
            if self.ignore_empty:
                non_empty = masks[valid].flatten(1).any(1)
                weight = non_empty[cols].to(cost.dtype)
            losses.append((cost[rows, cols] * weight).sum() / len(cols))
        return self.loss_weight * torch.stack(losses).mean()

    @property
    def loss_name(self):
        return self._loss_name

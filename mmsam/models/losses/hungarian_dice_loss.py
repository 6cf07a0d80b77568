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


EMPTY_WEIGHTINGS = ('reader', 'position')
NORMALIZERS = ('pairs', 'non_empty')
BATCH_REDUCTIONS = ('mean', 'sum')


@MODELS.register_module()
class HungarianDiceLoss(nn.Module):
    """SeqSAM's set loss (eq. 1): Dice loss under the best one-to-one prediction/annotation match.

    Per sample, the (M, K) cost matrix of soft Dice losses between sigmoid probabilities and
    the K valid (non-padding) annotations is computed without gradient (by default plain, not
    squared, denominators: ``1 - (2 sum(p t) + eps) / (sum(p) + sum(t) + eps)``, ``eps`` = 1)
    and solved with scipy's ``linear_sum_assignment``. The sample's loss is::

        sum over the min(M, K) matched pairs (j, k) of  w * cost[j, k]  /  N

    recomputed with gradient, and the batch loss is the mean (or the sum) over samples.

    Empty annotations (a reader who marked nothing) take part in the matching, so they absorb
    the predictions that fit no reader. With ``ignore_empty=True`` their matched losses weigh
    zero, so no prediction is trained towards an empty mask (``empty_weighting='reader'``:
    w = 0 for the pair whose annotation is empty). The official SeqSAM code multiplies the
    j-th matched pair by ``label_mask[j]``, the emptiness of the j-th annotation in list order,
    not of the annotation matched to it (``empty_weighting='position'``, the official value:
    a pair matched to an empty reader may be trained and a non-empty one skipped). With
    ``ignore_empty=False`` every matched pair is trained (the official code in eval mode).
    N is ``normalizer``: ``'pairs'`` = min(M, K), K when M >= K as the official code divides
    by K, empty readers included; ``'non_empty'`` = the number of non-empty annotations (at
    least 1). With M > K only the matched predictions get gradient; with M < K only the best
    M annotations are used.

    The official code's costs are MONAI ``DiceLoss(sigmoid=True, squared_pred=True)``
    (smoothing 1e-5) of one (H, W) mask against another, which MONAI reduces over the whole
    mask: ``eps=1e-5, squared_pred=True, per_row=False``. Its batch loss is the sum over the
    batch (``batch_reduction='sum'``), so twice mmsam's mean at batch 2.

    Args:
        eps (float): Dice smoothing.
        squared_pred (bool), per_row (bool): see :func:`soft_dice_loss`.
        ignore_empty (bool): weight the matched losses of empty annotations by zero.
        empty_weighting (str): ``'reader'`` or ``'position'`` (official), see above.
        normalizer (str): ``'pairs'`` (official) or ``'non_empty'``.
        batch_reduction (str): ``'mean'`` or ``'sum'`` (official).
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, eps=1.0, squared_pred=False, per_row=False, ignore_empty=True,
                 empty_weighting='reader', normalizer='pairs', batch_reduction='mean',
                 loss_weight=1.0, loss_name='loss_hungarian_dice'):
        super().__init__()
        for name, value, allowed in (('empty_weighting', empty_weighting, EMPTY_WEIGHTINGS),
                                     ('normalizer', normalizer, NORMALIZERS),
                                     ('batch_reduction', batch_reduction, BATCH_REDUCTIONS)):
            if value not in allowed:
                raise ValueError(f'HungarianDiceLoss {name} must be one of {allowed}, got '
                                 f'{value!r}')
        self.eps, self.ignore_empty = eps, bool(ignore_empty)
        self.squared_pred, self.per_row = bool(squared_pred), bool(per_row)
        self.empty_weighting, self.normalizer = empty_weighting, normalizer
        self.batch_reduction = batch_reduction
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
                                          'HungarianDiceLoss', self.squared_pred, self.per_row)
        losses = []
        for cost, masks, valid in zip(costs, target, target_valid):
            rows, cols = hungarian_match(cost)
            non_empty = masks[valid].flatten(1).any(1)
            weight = torch.ones(len(cols), dtype=cost.dtype, device=cost.device)
            if self.ignore_empty:
                # rows come sorted, so position j is the j-th matched pair
                index = cols if self.empty_weighting == 'reader' else torch.arange(
                    len(cols), device=cost.device)
                weight = non_empty[index].to(cost.dtype)
            count = len(cols) if self.normalizer == 'pairs' else max(int(non_empty.sum()), 1)
            losses.append((cost[rows, cols] * weight).sum() / count)
        losses = torch.stack(losses)
        return self.loss_weight * (losses.sum() if self.batch_reduction == 'sum'
                                   else losses.mean())

    @property
    def loss_name(self):
        return self._loss_name

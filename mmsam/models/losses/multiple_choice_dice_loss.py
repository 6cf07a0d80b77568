"""Winner-takes-all (multiple choice learning) Dice loss of M hypotheses against K annotations."""
import torch
import torch.nn as nn

from mmsam.registry import MODELS
from .mask_dice_loss import pairwise_costs_per_sample


@MODELS.register_module()
class MultipleChoiceDiceLoss(nn.Module):
    """For each annotation, the Dice loss of its best hypothesis (min over hypotheses).

    Per sample: ``mean over valid annotations k of min_m dice_loss(pred_m, target_k)``, then the
    mean over the batch, with the soft Dice of :func:`soft_dice_loss` (plain denominators,
    smoothing ``eps``). Only the winning hypothesis of each annotation gets gradient, as in
    multiple choice learning (Guzman-Rivera et al., 2012) and SAM's multi-output training.
    With one target per sample (K = 1) this is SAM's own "min over the 3 masks" loss.

    ``relaxation`` = eps_r > 0 gives the relaxed winner-takes-all of Rupprecht et al. (ICCV
    2017): the winner's loss is weighted 1 - eps_r and every other hypothesis' eps_r / (M - 1),
    so hypotheses that never win still learn. Pure WTA (0, the default, as SAM and the SeqSAM
    baseline) leaves a hypothesis that never wins untrained, which matters when the decoder
    starts from scratch rather than from SAM's three trained outputs.

    The official SeqSAM code's MCL baseline computes the Dice with MONAI's
    ``DiceLoss(sigmoid=True, squared_pred=True)`` on (N, H, W) tensors, which is a per-row
    Dice (``eps=1e-5, squared_pred=True, per_row=True``; see :func:`soft_dice_loss`).

    Args:
        eps (float): Dice smoothing.
        squared_pred (bool), per_row (bool): see :func:`soft_dice_loss`.
        relaxation (float): eps_r in [0, 1).
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, eps=1.0, relaxation=0.0, squared_pred=False, per_row=False,
                 loss_weight=1.0, loss_name='loss_mcl_dice'):
        super().__init__()
        if not 0 <= relaxation < 1:
            raise ValueError(f'MultipleChoiceDiceLoss relaxation must be in [0, 1), got '
                             f'{relaxation}')
        self.eps, self.relaxation = eps, float(relaxation)
        self.squared_pred, self.per_row = bool(squared_pred), bool(per_row)
        self.loss_weight, self._loss_name = loss_weight, loss_name

    def forward(self, pred_logits, target, target_valid=None):
        """Args:
            pred_logits (Tensor): (B, M, H, W) logits of M hypotheses.
            target (Tensor): (B, K, H, W) annotations in {0, 1}.
            target_valid (Tensor, optional): (B, K) bool, False for padding entries.

        Returns:
            Tensor: scalar loss.
        """
        losses = [(cost * self._weights(cost)).sum(0).mean()  # cost: (M, K_valid)
                  for cost in pairwise_costs_per_sample(pred_logits, target, target_valid,
                                                        self.eps, 'MultipleChoiceDiceLoss',
                                                        self.squared_pred, self.per_row)]
        return self.loss_weight * torch.stack(losses).mean()

    def _weights(self, cost):
        """(M, K) weights: 1 - relaxation on each column's minimum, the rest shared equally."""
        winners = torch.zeros_like(cost).scatter_(0, cost.detach().argmin(0, keepdim=True), 1.0)
        if self.relaxation == 0 or len(cost) == 1:
            return winners
        others = self.relaxation / (len(cost) - 1)
        return winners * (1 - self.relaxation) + (1 - winners) * others

    @property
    def loss_name(self):
        return self._loss_name

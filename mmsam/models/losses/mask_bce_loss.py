"""Pixel-wise binary cross-entropy of mask logits."""
import torch.nn as nn
import torch.nn.functional as F

from mmsam.registry import MODELS


@MODELS.register_module()
class MaskBCELoss(nn.Module):
    """Mean binary cross-entropy with logits over all pixels of a batch of masks.

    (mmseg's sigmoid ``CrossEntropyLoss`` expands integer labels to one-hot channels; this takes
    the target mask as it is.)

    Args:
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, loss_weight=1.0, loss_name='loss_bce'):
        super().__init__()
        self.loss_weight, self._loss_name = loss_weight, loss_name

    def forward(self, logits, target):
        """Args: logits (Tensor): (N, H, W) logits; target (Tensor): (N, H, W) in {0, 1}.

        Returns:
            Tensor: scalar loss.
        """
        return self.loss_weight * F.binary_cross_entropy_with_logits(
            logits, target.to(logits.dtype))

    @property
    def loss_name(self):
        return self._loss_name

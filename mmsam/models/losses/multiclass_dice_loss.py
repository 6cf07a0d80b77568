"""Soft Dice loss averaged over classes (SAMed / TransUNet form)."""
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from mmsam.registry import MODELS


@MODELS.register_module()
class MultiClassDiceLoss(nn.Module):
    """``1 - mean_c Dice_c`` of softmax probabilities against one-hot labels.

    For class c over all valid pixels of the batch (not per image), with p the softmax
    probability and t the one-hot target::

        Dice_c = (2 * sum(p * t) + smooth) / (sum(p^2) + sum(t^2) + smooth)   (squared=True)
        Dice_c = (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)       (squared=False)

    Unlike mmseg's ``DiceLoss`` (one Dice over all classes' pixels pooled, where background
    dominates), every class weighs the same, which is what SAMed and TransUNet train with.
    Pixels labelled ``ignore_index`` are left out of every sum.

    Under DDP (``sync_ranks=True``, the default) the sums are all-reduced across ranks while
    training, so the Dice is over the global batch as in one process (SAMed's official code
    trains with ``nn.DataParallel``, whose loss sees the whole batch). The all-reduce is
    autograd-aware: each rank's gradient then carries the world size as a factor, which DDP's
    gradient averaging divides out, so N processes train like one with the same global batch.

    Args:
        smooth (float): added to numerator and denominator (SAMed: 1e-5).
        squared (bool): squared (V-Net) denominators.
        include_background (bool): whether class 0 enters the mean.
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must start with ``loss_``).
        sync_ranks (bool): all-reduce the sums across ranks when training distributed.
    """

    def __init__(self, smooth=1e-5, squared=True, include_background=True, loss_weight=1.0,
                 loss_name='loss_dice', sync_ranks=True):
        super().__init__()
        self.sync_ranks = sync_ranks
        self.smooth, self.squared = smooth, squared
        self.include_background = include_background
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self):
        return self._loss_name

    def forward(self, seg_logits, seg_label, weight=None, ignore_index=255, **kwargs):
        """Compute the loss.

        Args:
            seg_logits (Tensor): (B, C, H, W) logits.
            seg_label (Tensor): (B, H, W) class ids; ``ignore_index`` marks pixels to skip.
            weight: unsupported, must be None (kept for mmseg's loss call signature).
            ignore_index (int): label of pixels to skip.

        Returns:
            Tensor: scalar loss.
        """
        if weight is not None:
            raise ValueError('MultiClassDiceLoss does not support pixel weights')
        num_classes = seg_logits.shape[1]
        valid = (seg_label != ignore_index).unsqueeze(1).to(seg_logits.dtype)
        probs = seg_logits.softmax(dim=1) * valid
        target = F.one_hot(seg_label.clamp(0, num_classes - 1).long(), num_classes)
        target = target.permute(0, 3, 1, 2).to(seg_logits.dtype) * valid
        dims = (0, 2, 3)
        intersection = (probs * target).sum(dims)
        if self.squared:
            denominator = (probs * probs).sum(dims) + (target * target).sum(dims)
        else:
            denominator = probs.sum(dims) + target.sum(dims)
        if self.sync_ranks and torch.is_grad_enabled() and dist.is_available() \
                and dist.is_initialized() and dist.get_world_size() > 1:
            from torch.distributed.nn.functional import all_reduce
            intersection = all_reduce(intersection)
            denominator = all_reduce(denominator)
        dice = (2 * intersection + self.smooth) / (denominator + self.smooth)
        if not self.include_background:
            dice = dice[1:]
        return self.loss_weight * (1 - dice.mean())

"""SAM 2's per-frame training losses (MedSAM2 trains with them unchanged).

For one prediction step of one frame -- M candidate masks, their predicted IoUs and the
occlusion (object) score -- SAM 2's ``MultiStepMultiMasksAndIous`` (the loss of MedSAM2's
``sam2.1_hiera_tiny_finetune512`` config: ``supervise_all_iou=True``, ``iou_use_l1_loss=True``,
``pred_obj_scores=True``, ``focal_gamma_obj_score=0``, ``focal_alpha_obj_score=-1``) takes

* a sigmoid focal loss (alpha 0.25, gamma 2) averaged over the pixels of each candidate, and a
  dice loss with +1 smoothing on numerator and denominator, per candidate;
* the candidate with the smallest ``w_mask * focal + w_dice * dice`` for those two;
* the L1 distance between predicted and actual IoU (prediction > 0 vs target), averaged over all
  candidates;
* the first three only where the target shows the object; the occlusion loss (binary cross
  entropy of the object score against "the target is not empty") everywhere.

The caller sums these over steps, frames and objects and divides by the number of objects.
"""
from typing import Dict

import torch
import torch.nn.functional as F


def sigmoid_focal_per_mask(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
                           gamma: float = 2.0) -> torch.Tensor:
    """Focal loss averaged over pixels: (N, M, H, W) logits and 0/1 target -> (N, M).

    ``alpha < 0`` disables the class weighting (then ``gamma = 0`` is plain BCE).
    """
    prob = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    p_true = prob * target + (1 - prob) * (1 - target)
    loss = bce * (1 - p_true) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(2).mean(-1)


def dice_per_mask(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft dice loss with +1 smoothing: (N, M, H, W) logits and 0/1 target -> (N, M)."""
    prob = logits.sigmoid().flatten(2)
    target = target.flatten(2)
    return 1 - (2 * (prob * target).sum(-1) + 1) / (prob.sum(-1) + target.sum(-1) + 1)


def actual_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of (logits > 0) with the target per mask: (N, M, H, W) -> (N, M); an empty union
    counts as 0."""
    pred, gt = logits.flatten(2) > 0, target.flatten(2) > 0
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return inter / union.clamp(min=1.0)


def sam2_step_losses(multimask_logits: torch.Tensor, iou_pred: torch.Tensor,
                     object_logits: torch.Tensor, target: torch.Tensor,
                     weights: Dict[str, float], focal_alpha: float = 0.25,
                     focal_gamma: float = 2.0) -> Dict[str, torch.Tensor]:
    """SAM 2's losses of one prediction step, summed over the objects (not yet normalised).

    Args:
        multimask_logits (Tensor): (N, M, H, W) candidate mask logits at the target's size.
        iou_pred (Tensor): (N, M) predicted IoUs.
        object_logits (Tensor): (N, 1) occlusion (object present) logits.
        target (Tensor): (N, 1, H, W) 0/1 ground truth.
        weights (dict): ``mask`` and ``dice`` weights, used to pick the best candidate.
        focal_alpha, focal_gamma: of the mask focal loss.

    Returns:
        dict[str, Tensor]: scalars ``mask``, ``dice``, ``iou``, ``occlusion``.
    """
    target = target.float().expand_as(multimask_logits)
    focal = sigmoid_focal_per_mask(multimask_logits, target, focal_alpha, focal_gamma)
    dice = dice_per_mask(multimask_logits, target)
    iou = (iou_pred.float() - actual_iou(multimask_logits, target)).abs()
    present = (target[:, 0].flatten(1) > 0).any(-1, keepdim=True).float()  # (N, 1)
    occlusion = F.binary_cross_entropy_with_logits(object_logits.float(), present,
                                                   reduction='none').mean(-1)
    if focal.shape[1] > 1:
        best = (focal * weights['mask'] + dice * weights['dice']).argmin(-1, keepdim=True)
        focal, dice = focal.gather(1, best), dice.gather(1, best)
        iou = iou.mean(-1, keepdim=True)
    return dict(mask=(focal * present).sum(), dice=(dice * present).sum(),
                iou=(iou * present).sum(), occlusion=occlusion.sum())

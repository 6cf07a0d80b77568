from .hungarian_dice_loss import HungarianDiceLoss, hungarian_match
from .kl_divergence_loss import KLDivergenceLoss, diagonal_gaussian_kl
from .mask_bce_loss import MaskBCELoss
from .mask_dice_loss import MaskDiceLoss, pairwise_soft_dice_loss, soft_dice_loss
from .multiclass_dice_loss import MultiClassDiceLoss
from .multiple_choice_dice_loss import MultipleChoiceDiceLoss

__all__ = ['HungarianDiceLoss', 'KLDivergenceLoss', 'MaskBCELoss', 'MaskDiceLoss',
           'MultiClassDiceLoss', 'MultipleChoiceDiceLoss', 'diagonal_gaussian_kl',
           'hungarian_match', 'pairwise_soft_dice_loss', 'soft_dice_loss']

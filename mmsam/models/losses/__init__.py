from .hungarian_dice_loss import HungarianDiceLoss, hungarian_match
from .mask_bce_loss import MaskBCELoss
from .mask_dice_loss import MaskDiceLoss, pairwise_soft_dice_loss, soft_dice_loss
from .multiclass_dice_loss import MultiClassDiceLoss
from .multiple_choice_dice_loss import MultipleChoiceDiceLoss

__all__ = ['HungarianDiceLoss', 'MaskBCELoss', 'MaskDiceLoss', 'MultiClassDiceLoss',
           'MultipleChoiceDiceLoss', 'hungarian_match', 'pairwise_soft_dice_loss', 'soft_dice_loss']

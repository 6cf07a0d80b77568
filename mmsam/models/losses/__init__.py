from .hungarian_dice_loss import HungarianDiceLoss, hungarian_match
from .kl_divergence_loss import KLDivergenceLoss, diagonal_gaussian_kl
from .mask_bce_loss import MaskBCELoss
from .mask_classification_criterion import MaskClassificationCriterion
from .mask_dice_loss import MaskDiceLoss, pairwise_soft_dice_loss, soft_dice_loss
from .match_costs import BoxL1Cost, GIoUCost, KeyedCost
from .multiclass_dice_loss import MultiClassDiceLoss
from .multiple_choice_dice_loss import MultipleChoiceDiceLoss

__all__ = ['BoxL1Cost', 'GIoUCost', 'KeyedCost', 'MaskClassificationCriterion',
           'HungarianDiceLoss', 'KLDivergenceLoss', 'MaskBCELoss', 'MaskDiceLoss',
           'MultiClassDiceLoss', 'MultipleChoiceDiceLoss', 'diagonal_gaussian_kl',
           'hungarian_match', 'pairwise_soft_dice_loss', 'soft_dice_loss']

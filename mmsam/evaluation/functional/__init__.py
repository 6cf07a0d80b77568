"""Plain metric functions (numpy in, numbers out) that the registered metrics call."""
from .click_auc import click_curve_auc
from .dice_hd95 import CONVENTIONS, dice_hd95, hd95, per_class_dice_hd95
from .ged import (d_avg, d_max, d_max_per_annotation, dice, diversity,
                  generalized_energy_distance, iou_distance, majority_vote,
                  pairwise_iou_distance)
from .nsd import class_tolerances, nsd, per_class_nsd, surface_distances

__all__ = ['CONVENTIONS', 'd_avg', 'd_max', 'd_max_per_annotation', 'dice', 'dice_hd95',
           'diversity', 'generalized_energy_distance', 'hd95', 'iou_distance', 'majority_vote',
           'pairwise_iou_distance', 'per_class_dice_hd95']
__all__ += ['class_tolerances', 'nsd', 'per_class_nsd', 'surface_distances']
__all__ += ['click_curve_auc']

"""Plain metric functions (numpy in, numbers out) that the registered metrics call."""
from .dice_hd95 import dice_hd95, hd95, per_class_dice_hd95

__all__ = ['dice_hd95', 'hd95', 'per_class_dice_hd95']

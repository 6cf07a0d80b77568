"""mmsam's registered evaluation metrics."""
from .volume_dice_hd95_metric import VolumeDiceHD95Metric

__all__ = ['VolumeDiceHD95Metric']

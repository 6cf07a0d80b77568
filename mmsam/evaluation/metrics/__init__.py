"""mmsam's registered evaluation metrics."""
from .ged_metric import GEDMetric
from .volume_dice_hd95_metric import VolumeDiceHD95Metric

__all__ = ['GEDMetric', 'VolumeDiceHD95Metric']

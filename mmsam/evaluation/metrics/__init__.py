"""mmsam's registered evaluation metrics."""
from .ged_metric import GEDMetric
from .interactive_protocol_metric import InteractiveProtocolMetric
from .volume_dice_hd95_metric import VolumeDiceHD95Metric

__all__ = ['GEDMetric', 'InteractiveProtocolMetric', 'VolumeDiceHD95Metric']

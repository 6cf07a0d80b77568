from .slice_visualization_hook import SliceVisualizationHook
from .stage_loss_weight_hook import StageLossWeightHook

__all__ = ['SliceVisualizationHook', 'StageLossWeightHook']

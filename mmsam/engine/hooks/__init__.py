from .atomic_checkpoint_hook import AtomicCheckpointHook
from .embedding_cache_hook import EmbeddingCacheHook
from .hypothesis_visualization_hook import HypothesisVisualizationHook
from .slice_visualization_hook import SliceVisualizationHook
from .stage_loss_weight_hook import StageLossWeightHook

__all__ = ['AtomicCheckpointHook', 'EmbeddingCacheHook', 'HypothesisVisualizationHook',
           'SliceVisualizationHook', 'StageLossWeightHook']

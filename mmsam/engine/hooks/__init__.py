from .slice_visualization_hook import SliceVisualizationHook

__all__ = ['SliceVisualizationHook']

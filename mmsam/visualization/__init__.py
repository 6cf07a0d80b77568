"""Visualisation: ``HypothesisVisualizer`` draws multi-hypothesis predictions; importing
mmseg.visualization registers mmseg's ``SegLocalVisualizer`` too (through the parent registry)."""
import mmseg.visualization  # noqa: F401

from .hypothesis_visualizer import HypothesisVisualizer

__all__ = ['HypothesisVisualizer']

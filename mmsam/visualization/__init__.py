"""Visualisation: mmseg's ``SegLocalVisualizer`` draws mmsam's predictions (registered through
the parent registry); importing mmseg.visualization registers it."""
import mmseg.visualization  # noqa: F401

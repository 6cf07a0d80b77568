"""mmsam: Segment Anything adaptations for medical image segmentation."""
from .version import __version__

__all__ = ['__version__']

from .sam_image_encoder import SAM_ARCHS, SAMImageEncoder
from .volume_stem import VolumeStem

__all__ = ['SAM_ARCHS', 'SAMImageEncoder', 'VolumeStem']

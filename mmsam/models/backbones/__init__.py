from .sam2_image_encoder import SAM2_ARCHS, SAM2ImageEncoder
from .sam_image_encoder import SAM_ARCHS, SAMImageEncoder
from .volume_stem import VolumeStem

__all__ = ['SAM2_ARCHS', 'SAM2ImageEncoder', 'SAM_ARCHS', 'SAMImageEncoder', 'VolumeStem']

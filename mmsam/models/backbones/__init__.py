from .sam_image_encoder import SAM_ARCHS, SAMImageEncoder

__all__ = ['SAM_ARCHS', 'SAMImageEncoder']

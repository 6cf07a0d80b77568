from .sam_mask_decoder import SAMMaskDecoder

__all__ = ['SAMMaskDecoder']

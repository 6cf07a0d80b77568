from .sam_decode_head import SAMDecodeHead
from .samed_head import SAMedHead

__all__ = ['SAMDecodeHead', 'SAMedHead']

from .hsam_head import HSAMHead
from .sam_decode_head import SAMDecodeHead
from .samed_head import SAMedHead

__all__ = ['HSAMHead', 'SAMDecodeHead', 'SAMedHead']

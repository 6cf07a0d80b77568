from .box_prompt_head import BoxPromptHead
from .hsam_head import HSAMHead
from .masksam_head import MaskSAMHead
from .medsam_head import MedSAMHead
from .psam_head import PSAMHead
from .sam_decode_head import SAMDecodeHead
from .sam_mcl_head import SAMMCLHead
from .samed_head import SAMedHead
from .seqsam_head import SeqSAMHead

__all__ = ['BoxPromptHead', 'HSAMHead', 'MaskSAMHead', 'MedSAMHead', 'PSAMHead', 'SAMDecodeHead', 'SAMMCLHead',
           'SAMedHead', 'SeqSAMHead']

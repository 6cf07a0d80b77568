from .hsam_prompt_encoder import HSAMPromptEncoder
from .masksam_prompt_encoder import MaskSAMPromptEncoder
from .sam2_prompt_encoder import SAM2PromptEncoder
from .sam_prompt_encoder import SAMPromptEncoder

__all__ = ['HSAMPromptEncoder', 'MaskSAMPromptEncoder', 'SAM2PromptEncoder', 'SAMPromptEncoder']

from .hsam_prompt_encoder import HSAMPromptEncoder
from .sam_prompt_encoder import SAMPromptEncoder

__all__ = ['HSAMPromptEncoder', 'SAMPromptEncoder']

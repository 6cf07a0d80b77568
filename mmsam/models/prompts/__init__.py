from .sam_prompt_encoder import SAMPromptEncoder

__all__ = ['SAMPromptEncoder']

from .masksam_prompt_generator import MaskSAMPromptGenerator

__all__ = ['MaskSAMPromptGenerator']

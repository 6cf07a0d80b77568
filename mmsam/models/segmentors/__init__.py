from .multi_hypothesis_segmentor import MultiHypothesisSegmentor
from .sam_segmentor import SAMSegmentor

__all__ = ['MultiHypothesisSegmentor', 'SAMSegmentor']

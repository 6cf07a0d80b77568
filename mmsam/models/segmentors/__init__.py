from .multi_hypothesis_segmentor import MultiHypothesisSegmentor
from .sam_segmentor import SAMSegmentor
from .volume_sam_segmentor import VolumeSAMSegmentor

__all__ = ['MultiHypothesisSegmentor', 'SAMSegmentor', 'VolumeSAMSegmentor']

from .multi_hypothesis_segmentor import MultiHypothesisSegmentor
from .sam2_volume_segmentor import SAM2VolumeSegmentor
from .sam_segmentor import SAMSegmentor
from .volume_sam_segmentor import VolumeSAMSegmentor

__all__ = ['MultiHypothesisSegmentor', 'SAM2VolumeSegmentor', 'SAMSegmentor',
           'VolumeSAMSegmentor']

from .box_prompt_from_annotation import BoxPromptFromAnnotation
from .load_multi_annotator_sample import LoadMultiAnnotatorSample
from .load_npz_slice import LoadNpzSlice
from .pack_multi_annotator_inputs import PackMultiAnnotatorInputs
from .random_elastic_deformation import RandomElasticDeformation
from .random_rotate_scale import RandomRotateScale

__all__ = ['BoxPromptFromAnnotation', 'LoadMultiAnnotatorSample', 'LoadNpzSlice',
           'PackMultiAnnotatorInputs', 'RandomElasticDeformation', 'RandomRotateScale']

from .load_npz_slice import LoadNpzSlice
from .random_elastic_deformation import RandomElasticDeformation
from .random_rotate_scale import RandomRotateScale

__all__ = ['LoadNpzSlice', 'RandomElasticDeformation', 'RandomRotateScale']

from .box_prompt_from_annotation import BoxPromptFromAnnotation
from .click_simulator import ClickSimulator
from .load_multi_annotator_sample import LoadMultiAnnotatorSample
from .load_npz_slice import LoadNpzSlice
from .load_volume import LoadVolume
from .normalize_intensity_3d import NormalizeIntensity3D
from .pack_volume_inputs import PackVolumeInputs
from .pack_multi_annotator_inputs import PackMultiAnnotatorInputs
from .random_brightness_3d import RandomBrightness3D
from .random_cascade import RandomCascade
from .random_contrast_3d import RandomContrast3D
from .random_crop_zoom import RandomCropZoom
from .random_elastic_deformation import RandomElasticDeformation
from .random_gamma_3d import RandomGamma3D
from .random_gaussian_blur_3d import RandomGaussianBlur3D
from .random_gaussian_noise_3d import RandomGaussianNoise3D
from .random_low_resolution_3d import RandomLowResolution3D
from .random_mirror_3d import RandomMirror3D
from .random_patch_crop_3d import RandomPatchCrop3D
from .random_rot90_flip import RandomRot90Flip
from .random_rotate_scale import RandomRotateScale
from .random_spatial_3d import RandomSpatial3D
from .resize_slices import ResizeSlices
from .sample_slice_sequence import SampleSliceSequence
from .volume_organ_prompts import VolumeOrganPrompts
from .window_intensity_3d import WindowIntensity3D

__all__ = ['BoxPromptFromAnnotation', 'ClickSimulator', 'LoadMultiAnnotatorSample', 'LoadNpzSlice',
           'PackMultiAnnotatorInputs', 'RandomCascade', 'RandomCropZoom',
           'RandomElasticDeformation', 'RandomRot90Flip', 'RandomRotateScale']
# 3D (volume) transforms
__all__ += ['LoadVolume', 'NormalizeIntensity3D', 'PackVolumeInputs', 'RandomBrightness3D',
            'RandomContrast3D', 'RandomGamma3D', 'RandomGaussianBlur3D', 'RandomGaussianNoise3D',
            'RandomLowResolution3D', 'RandomMirror3D', 'RandomPatchCrop3D', 'RandomSpatial3D',
            'ResizeSlices', 'SampleSliceSequence', 'VolumeOrganPrompts', 'WindowIntensity3D']

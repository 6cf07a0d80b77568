"""mmsam's datasets and transforms (mmseg's are imported so configs can name them too)."""
import mmseg.datasets  # noqa: F401

from .acdc_volume_dataset import ACDCVolumeDataset
from .amos_volume_dataset import AMOSVolumeDataset
from .foreground_oversample_batch_sampler import ForegroundOversampleBatchSampler
from .la_dataset import LADataset
from .multi_annotator_dataset import LIDCDataset, MultiAnnotatorDataset, QUBIQKidneyDataset
from .promise12_dataset import PROMISE12Dataset
from .synapse_dataset import SynapseDataset
from .synapse_volume_dataset import SynapseVolumeDataset
from .synthetic_abdomen_dataset import SyntheticAbdomenDataset
from .synthetic_abdomen_volume_dataset import SyntheticAbdomenVolumeDataset
from .synthetic_lesion_dataset import SyntheticLesionDataset
from .transforms import *  # noqa: F401,F403
from .volume_patch_dataset import VolumePatchDataset
from .volume_slice_dataset import VolumeSliceDataset

__all__ = ['LADataset', 'LIDCDataset', 'MultiAnnotatorDataset', 'PROMISE12Dataset',
           'QUBIQKidneyDataset', 'SynapseDataset', 'SyntheticAbdomenDataset',
           'SyntheticLesionDataset', 'VolumeSliceDataset']
# 3D (volume) datasets
__all__ += ['ACDCVolumeDataset', 'AMOSVolumeDataset', 'ForegroundOversampleBatchSampler',
            'SynapseVolumeDataset', 'SyntheticAbdomenVolumeDataset', 'VolumePatchDataset']

"""mmsam's datasets and transforms (mmseg's are imported so configs can name them too)."""
import mmseg.datasets  # noqa: F401

from .la_dataset import LADataset
from .multi_annotator_dataset import LIDCDataset, MultiAnnotatorDataset, QUBIQKidneyDataset
from .promise12_dataset import PROMISE12Dataset
from .synapse_dataset import SynapseDataset
from .synthetic_abdomen_dataset import SyntheticAbdomenDataset
from .synthetic_lesion_dataset import SyntheticLesionDataset
from .transforms import *  # noqa: F401,F403
from .volume_slice_dataset import VolumeSliceDataset

__all__ = ['LADataset', 'LIDCDataset', 'MultiAnnotatorDataset', 'PROMISE12Dataset',
           'QUBIQKidneyDataset', 'SynapseDataset', 'SyntheticAbdomenDataset',
           'SyntheticLesionDataset', 'VolumeSliceDataset']

"""The left atrium MRI dataset (2018 Atrial Segmentation Challenge) in mmsam's format."""
from mmsam.registry import DATASETS
from .volume_slice_dataset import VolumeSliceDataset

CLASSES = ('background', 'left_atrium')
PALETTE = [[0, 0, 0], [220, 20, 60]]


@DATASETS.register_module()
class LADataset(VolumeSliceDataset):
    """Left atrium (LA) gadolinium-enhanced MRI, slice-trained and volume-tested.

    Reads a data root written by ``tools/dataset_converters/la.py`` from UA-MT's preprocessed
    release (UA-MT/BCP split: 80 training / 20 test scans). Splits: ``train`` (the slices of
    the labelled scans only, 4 by default: the 5% setting of H-SAM, UA-MT and BCP), ``test``
    (the 20 test volumes) and, if converted with ``--all-train``, ``train_all`` (the slices of
    all 80 training scans).

    Args:
        data_root (str): converted data root (e.g. ``data/la``).
        **kwargs: :class:`VolumeSliceDataset` arguments (``split``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'LA'
    CONVERTER = ('make it with: python tools/dataset_converters/la.py SRC {data_root} (SRC: '
                 'UA-MT\'s preprocessed LA release with train.list, test.list and '
                 '"2018LA_Seg_Training Set/<case>/mri_norm2.h5")')

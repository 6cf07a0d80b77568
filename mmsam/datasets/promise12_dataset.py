"""The PROMISE12 prostate MRI dataset in mmsam's format."""
from mmsam.registry import DATASETS
from .volume_slice_dataset import VolumeSliceDataset

CLASSES = ('background', 'prostate')
PALETTE = [[0, 0, 0], [0, 128, 255]]


@DATASETS.register_module()
class PROMISE12Dataset(VolumeSliceDataset):
    """PROMISE12 transversal T2-weighted prostate MRI, slice-trained and volume-tested.

    Reads a data root written by ``tools/dataset_converters/promise12.py`` from the 50 training
    cases of the MICCAI 2012 challenge (40 training / 10 test cases, as MLB-Seg and H-SAM).
    Splits: ``train`` (the slices of the labelled training cases only, 3 by default), ``test``
    (the 10 test volumes) and, if converted with ``--all-train``, ``train_all`` (the slices of
    all 40 training cases).

    Args:
        data_root (str): converted data root (e.g. ``data/promise12``).
        **kwargs: :class:`VolumeSliceDataset` arguments (``split``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'PROMISE12'
    CONVERTER = ('make it with: python tools/dataset_converters/promise12.py SRC {data_root} '
                 '(SRC: the PROMISE12 training data, CaseNN.mhd and CaseNN_segmentation.mhd '
                 'with their .raw/.zraw files)')

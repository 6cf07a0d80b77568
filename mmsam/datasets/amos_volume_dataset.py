"""AMOS22 abdominal multi-organ CT as whole volumes, for 3D methods (5-fold CV)."""
from mmsam.registry import DATASETS
from .volume_patch_dataset import VolumePatchDataset

CLASSES = ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder', 'esophagus',
           'liver', 'stomach', 'aorta', 'inferior_vena_cava', 'pancreas', 'right_adrenal_gland',
           'left_adrenal_gland', 'duodenum', 'bladder', 'prostate_uterus')
PALETTE = [[0, 0, 0], [255, 127, 14], [44, 160, 44], [148, 103, 189], [255, 255, 0],
           [140, 86, 75], [214, 39, 40], [31, 119, 180], [23, 190, 207], [0, 0, 128],
           [227, 119, 194], [188, 189, 34], [127, 127, 127], [255, 152, 150], [197, 176, 213],
           [0, 128, 128]]

assert len(PALETTE) == len(CLASSES) == 16


@DATASETS.register_module()
class AMOSVolumeDataset(VolumePatchDataset):
    """AMOS22 CT: 15 abdominal organs + background, ids as in the release's ``dataset.json``.

    Reads a data root written by ``tools/dataset_converters/amos.py``: every labelled case in
    ``train_volumes/``, splits ``fold{k}_train`` and ``fold{k}_val`` (k = 0..4, nnU-Net's
    KFold); use ``volume_dir='train_volumes'`` for the validation folds too.

    Args:
        data_root (str): converted data root (e.g. ``data/amos``).
        **kwargs: :class:`VolumePatchDataset` arguments (``split``, ``volume_dir``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'AMOS'
    CONVERTER = ('make it with: python tools/dataset_converters/amos.py SRC {data_root} (SRC: '
                 'the AMOS22 release with imagesTr/, labelsTr/ and dataset.json)')

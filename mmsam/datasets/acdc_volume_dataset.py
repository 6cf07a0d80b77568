"""ACDC cardiac cine MRI (MICCAI 2017) as whole volumes, for 3D methods."""
from mmsam.registry import DATASETS
from .volume_patch_dataset import VolumePatchDataset

CLASSES = ('background', 'RV', 'MYO', 'LV')
PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 0], [0, 0, 255]]


@DATASETS.register_module()
class ACDCVolumeDataset(VolumePatchDataset):
    """ACDC: right ventricle, myocardium and left ventricle (+ background), ED and ES frames.

    Reads a data root written by ``tools/dataset_converters/acdc.py`` (70 training, 10
    validation and 20 test patients, two volumes each; per-volume z-scored intensities).
    Splits: ``train_volumes`` (in ``train_volumes/``), ``val`` and ``test`` (both in
    ``test_volumes/``: pass ``volume_dir='test_volumes'``).

    Args:
        data_root (str): converted data root (e.g. ``data/acdc``).
        **kwargs: :class:`VolumePatchDataset` arguments (``split``, ``volume_dir``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'ACDC'
    CONVERTER = ('make it with: python tools/dataset_converters/acdc.py SRC {data_root} (SRC: '
                 'the ACDC release with training/patientXXX/patientXXX_frameYY(_gt).nii.gz)')

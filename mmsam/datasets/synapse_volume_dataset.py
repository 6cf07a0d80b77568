"""Synapse multi-organ CT as whole volumes, for 3D methods (MaskSAM, nnU-Net protocol)."""
from mmsam.registry import DATASETS
from .synapse_dataset import CLASSES, PALETTE
from .volume_patch_dataset import VolumePatchDataset


@DATASETS.register_module()
class SynapseVolumeDataset(VolumePatchDataset):
    """Synapse multi-organ CT (8 organs + background) as 3D volumes.

    Reads a data root written by ``tools/dataset_converters/synapse.py --train-volumes``:
    training split ``train_volumes`` (the 18 cases in ``train_volumes/``), test split ``test``
    (the 12 cases in ``test_volumes/``).

    Args:
        data_root (str): converted data root (e.g. ``data/synapse``).
        **kwargs: :class:`VolumePatchDataset` arguments (``split``, ``volume_dir``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'Synapse'
    CONVERTER = ('make it from the raw BTCV release (SRC with img/ and label/) with: python '
                 'tools/dataset_converters/synapse.py SRC {data_root} --train-volumes '
                 '--intensity hu --target-spacing auto (nnU-Net\'s CT normalisation and '
                 'spacing, as the MaskSAM configs expect)')

"""Synapse multi-organ CT (MICCAI 2015 BTCV, TransUNet protocol) in mmsam's slice/volume format.

The label ids of the benchmark are stated once here, in :data:`SYNAPSE_ORGANS`; the converter
(``tools/dataset_converters/synapse.py``) and the dataset both read them from this module.
"""
from mmsam.registry import DATASETS
from .volume_slice_dataset import VolumeSliceDataset

# (id in TransUNet's preprocessed release and in mmsam, class name, id in the raw BTCV labels).
# The 8 organs TransUNet evaluates; every other raw BTCV id (esophagus 5, IVC 9, portal/splenic
# vein 10, adrenal glands 12-13) is background.
SYNAPSE_ORGANS = (
    (1, 'spleen', 1),
    (2, 'right_kidney', 2),
    (3, 'left_kidney', 3),
    (4, 'gallbladder', 4),
    (5, 'liver', 6),
    (6, 'stomach', 7),
    (7, 'aorta', 8),
    (8, 'pancreas', 11),
)
CLASSES = ('background', ) + tuple(name for _, name, _ in SYNAPSE_ORGANS)
BTCV_TO_SYNAPSE = {raw: new for new, _, raw in SYNAPSE_ORGANS}
PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 0], [0, 0, 255], [255, 255, 0], [255, 128, 0],
           [128, 0, 255], [255, 0, 255], [0, 255, 255]]

assert [new for new, _, _ in SYNAPSE_ORGANS] == list(range(1, len(CLASSES)))


@DATASETS.register_module()
class SynapseDataset(VolumeSliceDataset):
    """Synapse multi-organ CT: 8 organs + background, 2D training slices, 3D test volumes.

    Reads a data root written by ``tools/dataset_converters/synapse.py`` (format in
    :mod:`mmsam.datasets.io.data_root`). Splits: ``train`` (all training slices), ``test`` (the
    12 test volumes) and the few-shot subsets the converter writes, e.g. ``train_10pct``.

    Args:
        data_root (str): converted data root (e.g. ``data/synapse``).
        **kwargs: :class:`VolumeSliceDataset` arguments (``split``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    DATA_NAME = 'Synapse'
    CONVERTER = ('make it with: python tools/dataset_converters/synapse.py SRC {data_root} '
                 '(SRC: the TransUNet release with train_npz/ and test_vol_h5/, or raw BTCV '
                 'with img/ and label/)')

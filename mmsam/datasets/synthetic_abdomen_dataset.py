"""The embedded-default multi-organ dataset: procedurally generated CT-like volumes."""
from mmsam.registry import DATASETS
from .synthetic.abdomen_generator import CLASSES, PALETTE, ensure_synthetic_abdomen
from .volume_slice_dataset import VolumeSliceDataset


@DATASETS.register_module()
class SyntheticAbdomenDataset(VolumeSliceDataset):
    """Synapse-like synthetic abdomen (8 organs + background), generated on first use.

    The data are written under ``data_root`` in the format the Synapse converter produces, so
    the same pipeline and metric run on both. Generation is seeded; changing a generator
    parameter regenerates the data.

    Args:
        data_root (str): where the data live (default in configs: ``data/synthetic_abdomen``).
        generator (dict): keyword arguments of :func:`generate_synthetic_abdomen`
            (``num_train_cases``, ``num_test_cases``, ``size``, ``depth``, ``seed``).
        **kwargs: :class:`VolumeSliceDataset` arguments.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, data_root, generator=None, **kwargs):
        # Safe with several processes: generation holds a lock next to data_root.
        ensure_synthetic_abdomen(data_root, **(generator or {}))
        super().__init__(data_root=data_root, **kwargs)

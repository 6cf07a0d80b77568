"""The embedded-default multi-annotator dataset: procedural lesion crops with K readers."""
from mmsam.registry import DATASETS
from .multi_annotator_dataset import MultiAnnotatorDataset
from .synthetic.lesion_generator import ensure_synthetic_lesions


@DATASETS.register_module()
class SyntheticLesionDataset(MultiAnnotatorDataset):
    """LIDC-like synthetic lesion crops with K disagreeing readers, generated on first use.

    The data are written under ``data_root`` in the format the LIDC and QUBIQ converters
    produce (see :mod:`mmsam.datasets.synthetic.lesion_generator` for how readers disagree:
    boundary shifts, a reader outlining only the solid core, readers missing faint lesions,
    crops without a lesion). Generation is seeded; changing a generator parameter regenerates.

    Args:
        data_root (str): where the data live (default in configs: ``data/synthetic_lesions``).
        generator (dict): keyword arguments of :func:`generate_synthetic_lesions`
            (``num_train``, ``num_val``, ``num_test``, ``size``, ``num_annotators``, ``seed``).
        **kwargs: :class:`MultiAnnotatorDataset` arguments (``split``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=('background', 'lesion'), palette=[[0, 0, 0], [255, 160, 0]])
    DATA_NAME = 'SyntheticLesions'

    def __init__(self, data_root, generator=None, **kwargs):
        # Safe with several processes: generation holds a lock next to data_root.
        ensure_synthetic_lesions(data_root, **(generator or {}))
        super().__init__(data_root=data_root, **kwargs)

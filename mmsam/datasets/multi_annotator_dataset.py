"""Datasets of 2D images with several annotators' masks each (LIDC-IDRI, QUBIQ, SyntheticLesions).

On-disk format (written by ``tools/dataset_converters/lidc.py``, ``qubiq.py`` and the
SyntheticLesions generator)::

    data_root/samples/<id>.npz     image (H, W) float32 in [0, 1]; masks (K, H, W) uint8 in
                                   {0, 1}, one per annotator (empty masks allowed)
    data_root/splits/<split>.txt   sample ids, one a line (train, val, test)
    data_root/meta.json            classes, num_annotators, source, split; written last
"""
import os
import os.path as osp

from mmseg.datasets import BaseSegDataset

from mmsam.registry import DATASETS
from .io.data_root import META_FILE, SPLIT_DIR, read_meta, read_split
from .io.npz import npz_array_shape

SAMPLE_DIR = 'samples'


@DATASETS.register_module()
class MultiAnnotatorDataset(BaseSegDataset):
    """2D samples with K annotators' binary masks; one item per sample.

    Each item holds ``img_path`` (the sample's ``.npz``, which also holds the masks),
    ``sample_id`` and ``num_annotators``; loading and packing the image and its (K, H, W)
    masks is left to the pipeline. Classes come from ``meta.json`` unless the config or the
    subclass's ``METAINFO`` gives them.

    Args:
        data_root (str): converted data root.
        split (str): name of a file in ``splits/`` (``train``, ``val``, ``test``).
        metainfo (dict, optional): overrides, e.g. ``classes``.
        split_protocol (str, optional): the split protocol the data root must have been
            converted with (``meta.json``'s ``split_protocol``, e.g. LIDC's ``'by-series'`` or
            ``'official'``); None accepts any.
        **kwargs: ``BaseSegDataset`` arguments (``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict()
    # The split protocol of data roots whose meta.json names none (older converter versions).
    DEFAULT_SPLIT_PROTOCOL = None
    # The data's name and how to make its data root, for error messages.
    DATA_NAME = 'multi-annotator'
    CONVERTER = 'convert the data with the matching script in tools/dataset_converters/'
    # Said when a split file is missing, e.g. which converter option writes it.
    SPLIT_HINT = ''

    def __init__(self, data_root, split='train', metainfo=None, split_protocol=None, **kwargs):
        meta_path = osp.join(data_root, META_FILE)
        if not osp.isfile(meta_path):
            raise FileNotFoundError(
                f'{type(self).__name__}: {meta_path} not found, so {data_root} holds no '
                f'converted data; {self.CONVERTER.format(data_root=data_root)}')
        split_path = osp.join(data_root, SPLIT_DIR, f'{split}.txt')
        if not osp.isfile(split_path):
            raise FileNotFoundError(
                f'{type(self).__name__}: split {split!r} ({split_path}) does not exist in '
                f'{data_root}; it has {self._available_splits(data_root)}{self.SPLIT_HINT}. '
                f'Choose one of them, '
                f'or {self.CONVERTER.format(data_root=data_root)} with that split')
        self.split = split
        self.meta = read_meta(data_root)
        found = self.meta.get('split_protocol', self.DEFAULT_SPLIT_PROTOCOL)
        if split_protocol is not None and found != split_protocol:
            raise ValueError(
                f'{type(self).__name__}: {data_root} was converted with the {found!r} split, '
                f'but the config asks for the {split_protocol!r} split: convert the data again '
                f'with --split {split_protocol} ({self.CONVERTER.format(data_root=data_root)}), '
                'or point data_root at a data root converted so')
        metainfo = dict(metainfo or {})
        own = self.METAINFO.get('classes')
        if own and not metainfo.get('classes') and tuple(self.meta.get('classes', own)) != own:
            raise ValueError(
                f'{meta_path} lists classes {tuple(self.meta["classes"])}, not the '
                f'{self.DATA_NAME} classes {own}: {data_root} holds other data; '
                f'{self.CONVERTER.format(data_root=data_root)}, or point data_root at it')
        # mmseg's palette logic needs the classes before BaseSegDataset.__init__ runs.
        if not metainfo.get('classes') and not own:
            if not self.meta.get('classes'):
                raise ValueError(f'{meta_path} lists no "classes"; pass metainfo=dict(classes='
                                 '...) or re-run the converter')
            metainfo['classes'] = tuple(self.meta['classes'])
            if self.meta.get('palette'):
                metainfo.setdefault('palette', [list(c) for c in self.meta['palette']])
        super().__init__(data_root=data_root, ann_file='', img_suffix='.npz',
                         seg_map_suffix='.npz', reduce_zero_label=False, metainfo=metainfo,
                         **kwargs)

    @staticmethod
    def _available_splits(data_root):
        """Names of the split files under ``data_root/splits`` (sorted)."""
        folder = osp.join(data_root, SPLIT_DIR)
        if not osp.isdir(folder):
            return []
        return sorted(f[:-4] for f in os.listdir(folder) if f.endswith('.txt'))

    def load_data_list(self):
        """Enumerate the split's samples.

        Returns:
            list[dict]: one dict per sample with ``img_path``, ``sample_id``,
            ``num_annotators``, ``label_map`` (None), ``reduce_zero_label`` (False) and
            ``seg_fields`` ([]).
        """
        sample_dir = osp.join(self.data_root, self.meta.get('sample_dir', SAMPLE_DIR))
        names = read_split(self.data_root, self.split)
        paths = [osp.join(sample_dir, f'{name}.npz') for name in names]
        missing = [p for p in paths if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} sample file(s) listed in split {self.split!r} do not exist, '
                f'e.g. {missing[0]}; the data root is incomplete: '
                f'{self.CONVERTER.format(data_root=self.data_root)}')
        num_annotators = self.meta.get('num_annotators')
        if num_annotators is None and paths:
            num_annotators = npz_array_shape(paths[0], 'masks')[0]
        return [dict(img_path=path, sample_id=name, num_annotators=int(num_annotators),
                     label_map=None, reduce_zero_label=False, seg_fields=[])
                for name, path in zip(names, paths)]


@DATASETS.register_module()
class LIDCDataset(MultiAnnotatorDataset):
    """LIDC-IDRI lung-nodule CT crops (128x128) with 4 readers' masks (Kohl et al.'s release).

    Reads a data root written by ``tools/dataset_converters/lidc.py``: splits ``train``,
    ``val``, ``test``, 80/10/10 by patient series (``--split by-series``, the default) or the
    official SeqSAM code's contiguous blocks in pickle order (``--split official``).

    Args:
        data_root (str): converted data root (e.g. ``data/lidc``).
        **kwargs: :class:`MultiAnnotatorDataset` arguments (``split``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=('background', 'nodule'), palette=[[0, 0, 0], [220, 20, 60]])
    DEFAULT_SPLIT_PROTOCOL = 'by-series'
    DATA_NAME = 'LIDC-IDRI'
    CONVERTER = ('make it with: python tools/dataset_converters/lidc.py SRC {data_root} (SRC: '
                 'the Probabilistic U-Net\'s LIDC crops pickle, e.g. data_lidc.pickle)')


@DATASETS.register_module()
class QUBIQKidneyDataset(MultiAnnotatorDataset):
    """QUBIQ 2020 kidney CT images with 3 annotators' masks (20 train / 4 test cases).

    Reads a data root written by ``tools/dataset_converters/qubiq.py``: splits ``train`` and
    ``test``, and ``val`` only when converted with ``--val-cases``.

    Args:
        data_root (str): converted data root (e.g. ``data/qubiq_kidney``).
        **kwargs: :class:`MultiAnnotatorDataset` arguments (``split``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=('background', 'kidney'), palette=[[0, 0, 0], [0, 128, 255]])
    DATA_NAME = 'QUBIQ kidney'
    SPLIT_HINT = ' (a val split exists only when converted with --val-cases FILE)'
    CONVERTER = ('make it with: python tools/dataset_converters/qubiq.py SRC {data_root} (SRC: '
                 'the QUBIQ 2020 kidney data, <split folder>/caseNN/image.nii.gz with '
                 'task01_seg01..03.nii.gz)')

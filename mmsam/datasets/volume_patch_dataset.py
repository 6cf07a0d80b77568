"""Whole 3D volumes in mmsam's format, for patch-trained, volume-tested 3D methods."""
import numbers
import os.path as osp

from mmseg.datasets import BaseSegDataset

from mmsam.registry import DATASETS
from .io.data_root import SPLIT_DIR, TRAIN_VOLUME_DIR, read_split
from .volume_slice_dataset import converted_metainfo


@DATASETS.register_module()
class VolumePatchDataset(BaseSegDataset):
    """3D volumes: one random patch per item for training, one whole case per item for testing.

    The on-disk format is described in :mod:`mmsam.datasets.io.data_root`. Each item is a case
    (``<data_root>/<volume_dir>/<case>.npz``) listed in ``splits/<split>.txt``; the pipeline
    (``LoadVolume``, ``RandomPatchCrop3D``, ...) loads and crops it. In training an epoch has
    ``samples_per_epoch`` items and item ``i`` is case ``i mod n`` (nnU-Net's "250 iterations
    per epoch", independent of the number of cases); in test mode there is one item per case.

    Training items may be indexed by ``(index, force_fg)`` tuples, as
    :class:`ForegroundOversampleBatchSampler` yields them (nnU-Net's per-batch foreground
    oversampling); ``force_fg`` goes into the pipeline's ``results`` for ``RandomPatchCrop3D``.

    Each data info holds ``img_path`` = ``seg_map_path`` (the npz), ``case_id``,
    ``num_classes``, and from ``meta.json`` ``intensity`` (``'hu'``, ``'mr'``, ``'zscore'``,
    ``'unit'`` or None) and ``intensity_properties`` (its ``ct_foreground`` dict or None), so
    that ``NormalizeIntensity3D`` needs no file I/O.

    Args:
        data_root (str): converted data root.
        split (str): name of a file in ``splits/`` listing cases (``train_volumes``, ``test``,
            ``val``, ``fold0_train``, ...).
        volume_dir (str): folder of the case files under ``data_root`` (``train_volumes`` or
            ``test_volumes``).
        samples_per_epoch (int, optional): training length; default: the number of cases.
            Not allowed in test mode.
        **kwargs: ``BaseSegDataset`` arguments (``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict()
    DATA_NAME = 'dataset'
    CONVERTER = 'convert the data with the matching script in tools/dataset_converters/'

    def __init__(self, data_root, split=TRAIN_VOLUME_DIR, volume_dir=TRAIN_VOLUME_DIR,
                 samples_per_epoch=None, metainfo=None, test_mode=False, **kwargs):
        metainfo, meta = converted_metainfo(self, data_root, metainfo)
        if samples_per_epoch is not None:
            if test_mode:
                raise ValueError(f'{type(self).__name__}: samples_per_epoch='
                                 f'{samples_per_epoch} is for training; test mode reads each '
                                 'case once: remove it from the test/val dataset')
            if isinstance(samples_per_epoch, bool) or \
                    not isinstance(samples_per_epoch, numbers.Integral) or samples_per_epoch < 1:
                raise ValueError(f'{type(self).__name__}: samples_per_epoch must be a positive '
                                 f'int, got {samples_per_epoch!r}')
        self.split = split
        self.volume_dir = volume_dir
        self.samples_per_epoch = samples_per_epoch
        self.intensity = meta.get('intensity')
        self.intensity_properties = meta.get('ct_foreground')
        super().__init__(data_root=data_root, ann_file='', img_suffix='.npz',
                         seg_map_suffix='.npz', reduce_zero_label=False, metainfo=metainfo,
                         test_mode=test_mode, **kwargs)

    def _hint(self):
        return self.CONVERTER.format(data_root=self.data_root)

    def __getitem__(self, idx):
        """Item ``idx``, or ``idx = (index, force_fg)`` from the oversampling batch sampler."""
        if not isinstance(idx, tuple):
            return super().__getitem__(idx)
        index, force_fg = idx
        if self.test_mode:
            raise ValueError(f'{type(self).__name__}: a test-mode dataset samples no patches; '
                             'remove ForegroundOversampleBatchSampler from the test/val '
                             'dataloader')
        if not self._fully_initialized:
            self.full_init()
        info = self.get_data_info(index)
        info['force_fg'] = bool(force_fg)
        data = self.pipeline(info)
        if data is None:
            raise ValueError(f'{type(self).__name__}: the pipeline dropped item {index} '
                             f'({info["case_id"]}); a patch pipeline must return every item')
        return data

    def load_data_list(self):
        """One data info per case (test mode) or per training sample (case ``i mod n``)."""
        split_file = osp.join(self.data_root, SPLIT_DIR, f'{self.split}.txt')
        if not osp.isfile(split_file):
            raise FileNotFoundError(f'{type(self).__name__}: split file {split_file} does not '
                                    f'exist; {self._hint()}')
        cases = read_split(self.data_root, self.split)
        if not cases:
            raise ValueError(f'split file {split_file} lists no cases; {self._hint()}')
        infos = []
        for case_id in cases:
            path = osp.join(self.data_root, self.volume_dir, f'{case_id}.npz')
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'volume {path} listed in {split_file} does not exist (is volume_dir='
                    f'{self.volume_dir!r} the folder of split {self.split!r}?); {self._hint()}')
            infos.append(dict(
                img_path=path, seg_map_path=path, case_id=case_id, intensity=self.intensity,
                intensity_properties=self.intensity_properties, label_map=None,
                reduce_zero_label=False, seg_fields=[],
                num_classes=len(self.metainfo['classes'])))
        if self.test_mode:
            return infos
        length = self.samples_per_epoch or len(infos)
        return [dict(infos[i % len(infos)]) for i in range(length)]

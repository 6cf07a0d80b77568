"""Datasets in mmsam's slice/volume format: 2D slices to train, 3D volumes to test."""
import os.path as osp

from mmseg.datasets import BaseSegDataset

from mmsam.registry import DATASETS
from .io.data_root import (
    META_FILE, TEST_VOLUME_DIR, TRAIN_SLICE_DIR, parse_slice_stem, read_meta, read_split)
from .io.npz import npz_array_shape


def converted_metainfo(dataset, data_root, metainfo=None):
    """Check that ``data_root`` holds converted data of ``dataset``'s classes.

    Shared by the slice and volume datasets. ``dataset`` provides ``METAINFO``, ``DATA_NAME``
    and ``CONVERTER`` (a hint formatted with ``data_root``, named in every error).

    Args:
        dataset (BaseSegDataset): the dataset being built (its class attributes are read).
        data_root (str): the converted data root.
        metainfo (dict, optional): the user's metainfo; its ``classes`` win over the data's.

    Returns:
        tuple[dict, dict]: the metainfo to pass to ``BaseSegDataset`` (classes and palette
        from ``meta.json`` when neither the class nor the user names them) and ``meta.json``.
    """
    name = type(dataset).__name__
    hint = dataset.CONVERTER.format(data_root=data_root)
    if not osp.isfile(osp.join(data_root, META_FILE)):
        raise FileNotFoundError(
            f'{name}: {osp.join(data_root, META_FILE)} not found, so {data_root} holds no '
            f'converted data; {hint}')
    metainfo = dict(metainfo or {})
    meta = read_meta(data_root)
    own = dataset.METAINFO.get('classes')
    if own and not metainfo.get('classes') and tuple(meta.get('classes', own)) != own:
        raise ValueError(
            f'{osp.join(data_root, META_FILE)} lists classes {tuple(meta["classes"])}, not '
            f'the {dataset.DATA_NAME} classes {own}: {data_root} holds other data; {hint}, '
            'or point data_root at it')
    if not metainfo.get('classes') and not own:
        metainfo['classes'] = tuple(meta['classes'])
        if meta.get('palette'):
            metainfo.setdefault('palette', [list(c) for c in meta['palette']])
    return metainfo, meta


@DATASETS.register_module()
class VolumeSliceDataset(BaseSegDataset):
    """2D slices for training and slice-by-slice 3D volumes for testing (TransUNet protocol).

    The on-disk format is described in :mod:`mmsam.datasets.io.data_root`. In ``split='train'``
    each item is one stored slice. In a volume split (``'test'``) each item is one slice of a
    stored volume, with ``case_id``, ``slice_index`` and ``num_slices`` in its metainfo so
    that :class:`VolumeDiceHD95Metric` can stack predictions back into volumes.

    Args:
        data_root (str): dataset root.
        split (str): name of a file in ``splits/`` (``train``, ``test``, or e.g. a few-shot
            subset ``train_10pct``); the train-style splits list slices, ``test`` lists cases.
        volumes (bool, optional): whether ``split`` lists volumes; default: ``split == 'test'``.
        **kwargs: ``BaseSegDataset`` arguments (``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict()
    # The data's name and how to make its data root, for error messages.
    DATA_NAME = 'dataset'
    CONVERTER = 'convert the data with the matching script in tools/dataset_converters/'

    def __init__(self, data_root, split='train', volumes=None, metainfo=None, **kwargs):
        self.split = split
        self.volumes = split == 'test' if volumes is None else volumes
        metainfo, _ = converted_metainfo(self, data_root, metainfo)
        super().__init__(data_root=data_root, ann_file='', img_suffix='.npz',
                         seg_map_suffix='.npz', reduce_zero_label=False, metainfo=metainfo,
                         **kwargs)

    def load_data_list(self):
        """Enumerate the split's items: list of dicts with ``img_path`` and slice metainfo."""
        common = dict(label_map=None, reduce_zero_label=False, seg_fields=[],
                      num_classes=len(self.metainfo['classes']))
        data_list = []
        if not self.volumes:
            for name in read_split(self.data_root, self.split):
                path = osp.join(self.data_root, TRAIN_SLICE_DIR, f'{name}.npz')
                case_id, index = parse_slice_stem(name)
                data_list.append(dict(img_path=path, seg_map_path=path, case_id=case_id,
                                      slice_index=index, **common))
            return data_list
        for case_id in read_split(self.data_root, self.split):
            path = osp.join(self.data_root, TEST_VOLUME_DIR, f'{case_id}.npz')
            if not osp.isfile(path):
                raise FileNotFoundError(f'volume {path} listed in split {self.split!r} does '
                                        'not exist; re-run the dataset converter')
            depth = npz_array_shape(path, 'label')[0]
            data_list += [dict(img_path=path, seg_map_path=path, case_id=case_id,
                               slice_index=i, num_slices=depth, **common)
                          for i in range(depth)]
        return data_list

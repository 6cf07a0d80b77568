import numpy as np
import pytest

from mmsam.datasets import VolumeSliceDataset
from mmsam.datasets.transforms import LoadNpzSlice
from mmsam.datasets.io.data_root import write_meta, write_split
from mmsam.datasets.io.npz import save_slice, save_volume

CLASSES = ('background', 'organ_a', 'organ_b')


@pytest.fixture()
def data_root(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / 'data'
    names = []
    for case in ('case0001', 'case0002'):
        for i in range(3):
            name = f'{case}_slice{i:03d}'
            save_slice(str(root / 'train_slices' / f'{name}.npz'), rng.random((16, 16)),
                       rng.integers(0, 3, (16, 16)))
            names.append(name)
    save_volume(str(root / 'test_volumes' / 'case0003.npz'), rng.random((4, 16, 16)),
                rng.integers(0, 3, (4, 16, 16)), spacing=(2.5, 0.7, 0.7))
    write_split(str(root), 'train', names)
    write_split(str(root), 'test', ['case0003'])
    write_meta(str(root), dict(classes=list(CLASSES)))
    return str(root)


def _pipeline():
    return [dict(type='LoadNpzSlice'),
            dict(type='PackSegInputs', meta_keys=('img_path', 'case_id', 'slice_index',
                                                  'num_slices', 'spacing', 'ori_shape'))]


def test_train_split_lists_slices_with_classes_from_meta(data_root):
    dataset = VolumeSliceDataset(data_root=data_root, split='train', pipeline=_pipeline())
    assert len(dataset) == 6
    assert dataset.metainfo['classes'] == CLASSES
    item = dataset[4]
    assert item['inputs'].shape == (3, 16, 16)
    assert item['data_samples'].metainfo['case_id'] == 'case0002'
    assert item['data_samples'].metainfo['slice_index'] == 1
    raw = np.load(f'{data_root}/train_slices/case0002_slice001.npz')
    np.testing.assert_allclose(item['inputs'][0].numpy(), raw['image'] * 255, rtol=1e-6)
    np.testing.assert_array_equal(item['data_samples'].gt_sem_seg.data[0].numpy(), raw['label'])


def test_test_split_enumerates_volume_slices(data_root):
    dataset = VolumeSliceDataset(data_root=data_root, split='test', test_mode=True,
                                 pipeline=_pipeline())
    assert len(dataset) == 4
    raw = np.load(f'{data_root}/test_volumes/case0003.npz')
    for i in range(4):
        sample = dataset[i]['data_samples']
        assert (sample.case_id, sample.slice_index, sample.num_slices) == ('case0003', i, 4)
        assert sample.spacing == (2.5, 0.7, 0.7)
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), raw['label'][i])


def test_label_value_beyond_classes_names_the_file(data_root):
    save_slice(f'{data_root}/train_slices/case0001_slice000.npz', np.zeros((16, 16)),
               np.full((16, 16), 7))
    dataset = VolumeSliceDataset(data_root=data_root, split='train', pipeline=_pipeline())
    with pytest.raises(ValueError, match=r'case0001_slice000\.npz: label value 7 >= num_classes 3'):
        dataset[0]


def test_unreadable_data_file_names_the_file(data_root):
    with open(f'{data_root}/train_slices/case0001_slice002.npz', 'wb') as f:
        f.write(b'garbage')
    dataset = VolumeSliceDataset(data_root=data_root, split='train', pipeline=_pipeline())
    with pytest.raises(OSError, match=r'case0001_slice002\.npz'):
        dataset[2]


def test_missing_split_and_volume_are_reported(data_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='split file'):
        VolumeSliceDataset(data_root=data_root, split='train_10pct', pipeline=[])
    write_split(data_root, 'test', ['case0009'])
    with pytest.raises(FileNotFoundError, match='case0009'):
        VolumeSliceDataset(data_root=data_root, split='test', pipeline=[])


def test_load_npz_slice_rejects_mismatched_shapes(tmp_path):
    path = str(tmp_path / 'x.npz')
    np.savez(path, image=np.zeros((4, 4), np.float32), label=np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match='same|one shape'):
        LoadNpzSlice()(dict(img_path=path, num_classes=2))

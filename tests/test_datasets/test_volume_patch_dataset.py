"""VolumePatchDataset and its subclasses: lengths, case cycling, meta data, error messages."""
import numpy as np
import pytest

from mmsam.datasets import (ACDCVolumeDataset, AMOSVolumeDataset, SynapseVolumeDataset,
                            SyntheticAbdomenVolumeDataset, VolumePatchDataset)
from mmsam.datasets.io.data_root import read_split, write_meta, write_split
from mmsam.datasets.io.npz import save_volume
from mmsam.registry import DATASETS

CLASSES = ('background', 'organ_a', 'organ_b')
CT = dict(mean=40., std=20., percentile_00_5=-100., percentile_99_5=200.)
CASES = ('case0001', 'case0002', 'case0003')


@pytest.fixture()
def data_root(tmp_path):
    rng = np.random.default_rng(0)
    root = str(tmp_path / 'data')
    for i, case in enumerate(CASES):
        save_volume(f'{root}/train_volumes/{case}.npz', rng.random((4 + i, 12, 12)),
                    rng.integers(0, 3, (4 + i, 12, 12)), spacing=(2.5, 0.7, 0.7))
    save_volume(f'{root}/test_volumes/case0009.npz', rng.random((5, 12, 12)),
                rng.integers(0, 3, (5, 12, 12)))
    write_split(root, 'train_volumes', CASES)
    write_split(root, 'test', ['case0009'])
    write_meta(root, dict(classes=list(CLASSES), intensity='hu', ct_foreground=CT))
    return root


PIPELINE = [dict(type='LoadVolume'), dict(type='NormalizeIntensity3D', mode='ct'),
            dict(type='RandomPatchCrop3D', patch_size=(4, 8, 8)),
            dict(type='PackVolumeInputs')]


def test_training_length_and_case_cycling(data_root):
    dataset = VolumePatchDataset(data_root=data_root, samples_per_epoch=7, pipeline=[])
    assert len(dataset) == 7
    assert [dataset.get_data_info(i)['case_id'] for i in range(7)] == \
        [CASES[i % 3] for i in range(7)]
    info = dataset.get_data_info(4)
    assert info['img_path'] == info['seg_map_path'] == f'{data_root}/train_volumes/case0002.npz'
    assert info['intensity'] == 'hu' and info['intensity_properties'] == CT
    assert info['num_classes'] == 3 and dataset.metainfo['classes'] == CLASSES
    assert len(VolumePatchDataset(data_root=data_root, pipeline=[])) == 3  # default: n cases


def test_test_mode_one_item_per_case(data_root):
    dataset = VolumePatchDataset(data_root=data_root, split='test', volume_dir='test_volumes',
                                 test_mode=True, pipeline=[])
    assert len(dataset) == 1 and dataset.get_data_info(0)['case_id'] == 'case0009'
    with pytest.raises(ValueError, match='samples_per_epoch=10 is for training'):
        VolumePatchDataset(data_root=data_root, split='test', volume_dir='test_volumes',
                           test_mode=True, samples_per_epoch=10)
    with pytest.raises(ValueError, match='positive int'):
        VolumePatchDataset(data_root=data_root, samples_per_epoch=0)


def test_items_run_through_the_pipeline(data_root):
    dataset = VolumePatchDataset(data_root=data_root, samples_per_epoch=4, pipeline=PIPELINE)
    np.random.seed(0)
    item = dataset[2]
    assert item['inputs'].shape == (1, 4, 8, 8)
    assert item['data_samples'].gt_sem_seg.data.shape == (4, 8, 8)
    meta = item['data_samples'].metainfo
    assert meta['case_id'] == 'case0003' and meta['ori_shape'] == (6, 12, 12)
    assert meta['spacing'] == (2.5, 0.7, 0.7) and meta['is_volume']


def test_missing_files_are_reported_with_the_converter(data_root):
    write_meta(data_root, dict(classes=list(AMOSVolumeDataset.METAINFO['classes'])))
    with pytest.raises(FileNotFoundError, match=r'fold0_train\.txt.*amos\.py'):
        AMOSVolumeDataset(data_root=data_root, split='fold0_train')
    write_split(data_root, 'val', ['case0009'])
    with pytest.raises(FileNotFoundError, match=r"volume_dir='train_volumes'"):
        VolumePatchDataset(data_root=data_root, split='val')
    with pytest.raises(FileNotFoundError, match=r'synapse\.py SRC .* --train-volumes'):
        SynapseVolumeDataset(data_root=data_root + '_missing')


def test_subclasses_check_their_classes(data_root):
    with pytest.raises(ValueError, match=r'not the ACDC classes.*acdc\.py'):
        ACDCVolumeDataset(data_root=data_root)
    write_meta(data_root, dict(classes=list(ACDCVolumeDataset.METAINFO['classes'])))
    dataset = ACDCVolumeDataset(data_root=data_root, pipeline=[])
    assert dataset.metainfo['classes'] == ('background', 'RV', 'MYO', 'LV')
    assert dataset.get_data_info(0)['intensity_properties'] is None
    assert len(AMOSVolumeDataset.METAINFO['classes']) == 16
    assert AMOSVolumeDataset.METAINFO['classes'][-1] == 'prostate_uterus'
    assert DATASETS.get('SynapseVolumeDataset') is SynapseVolumeDataset


def test_synthetic_abdomen_volume_dataset(tmp_path):
    root = str(tmp_path / 'abd')
    gen = dict(num_train_cases=2, num_test_cases=1, size=32, depth=8)
    train = SyntheticAbdomenVolumeDataset(data_root=root, generator=gen, samples_per_epoch=5,
                                          pipeline=[])
    assert len(train) == 5 and read_split(root, 'train_volumes') == ['case0000', 'case0001']
    assert train.get_data_info(3)['case_id'] == 'case0001'
    props = train.get_data_info(0)['intensity_properties']
    assert train.get_data_info(0)['intensity'] == 'unit'
    assert props['percentile_00_5'] <= props['mean'] <= props['percentile_99_5']
    test = SyntheticAbdomenVolumeDataset(data_root=root, generator=gen, split='test',
                                         volume_dir='test_volumes', test_mode=True, pipeline=[])
    assert len(test) == 1 and test.get_data_info(0)['case_id'] == 'case0002'

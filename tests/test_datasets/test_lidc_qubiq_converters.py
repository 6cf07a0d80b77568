"""LIDC and QUBIQ kidney converters: tiny sources in the real layouts, converted and read back."""
import importlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import load_script

from mmsam.datasets.multi_annotator_dataset import (LIDCDataset, MultiAnnotatorDataset,
                                                    QUBIQKidneyDataset)

REPO = Path(__file__).resolve().parents[2]


def load_converter(name):
    """The library module of tools/dataset_converters/<name>.py."""
    return importlib.import_module(f'mmsam.datasets.converters.{name}')


def load_cli(name):
    """tools/dataset_converters/<name>.py, the command line (tools/ is not a package)."""
    return load_script(f'tools/dataset_converters/{name}.py')


lidc = load_converter('lidc')
qubiq = load_converter('qubiq')

S = 8  # crop side (the release uses 128)


def run_cli(name, *args):
    return subprocess.run([sys.executable, str(REPO / 'tools' / 'dataset_converters' /
                                               f'{name}.py'), *map(str, args)],
                          capture_output=True, text=True, cwd=str(REPO))


def read_sample(root, sample_id):
    with np.load(root / 'samples' / f'{sample_id}.npz', allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def split_ids(root, name):
    return (root / 'splits' / f'{name}.txt').read_text().split()


# ------------------------------------------------------------------------------------------------
# LIDC


def lidc_crops():
    """12 crops over 6 series: uint8, float [0, 1] and float outside [0, 1] images."""
    rng = np.random.default_rng(0)
    crops = {}
    for i in range(12):
        series = f'1.3.6.1.4.{i // 2}'
        if i % 3 == 0:
            image = rng.integers(0, 256, (S, S)).astype(np.uint8)
        elif i % 3 == 1:
            image = rng.random((S, S)).astype(np.float32)
        else:
            image = rng.normal(size=(S, S)) * 300 - 100
        masks = [(rng.random((S, S)) > 0.5).astype(np.uint8) for _ in range(4)]
        masks[3] = np.zeros((S, S), np.uint8)  # an empty reader mask
        if i == 4:
            masks[0] = masks[0] * 255  # a 0/255 mask
        crops[f'LIDC-IDRI-{i // 2:04d}/slice {i}.png'] = dict(image=image, masks=masks,
                                                             series_uid=series)
    return crops


def write_pickle(path, data):
    with open(path, 'wb') as f:
        pickle.dump(data, f)
    return path


@pytest.fixture
def lidc_src(tmp_path):
    return write_pickle(tmp_path / 'data_lidc.pickle', lidc_crops())


def test_lidc_convert_normalises_and_splits_by_series(lidc_src, tmp_path):
    dst = tmp_path / 'lidc'
    meta = lidc.convert_lidc(str(lidc_src), str(dst), seed=0)
    crops = lidc_crops()
    assert meta['classes'] == ['background', 'nodule'] and meta['num_annotators'] == 4
    assert meta['converter']['name'] == 'LIDCConverter'
    assert json.loads((dst / 'meta.json').read_text()) == meta
    ids = {k: lidc.safe_sample_ids([k])[0] for k in crops}
    assert ids['LIDC-IDRI-0002/slice 4.png'] == 'LIDC-IDRI-0002_slice_4.png'
    seen = {}
    for name in ('train', 'val', 'test'):
        for sample_id in split_ids(dst, name):
            seen[sample_id] = name
    assert sorted(seen) == sorted(ids.values())
    # by series: both crops of a series are in one split; 6 series -> 4/1/1
    series_split = {}
    for key, crop in crops.items():
        series_split.setdefault(crop['series_uid'], set()).add(seen[ids[key]])
    assert all(len(s) == 1 for s in series_split.values())
    assert sorted(meta['num_series'].values()) == [1, 1, 4]
    for key, crop in crops.items():
        s = read_sample(dst, ids[key])
        assert str(s['crop_key']) == key and str(s['series_uid']) == crop['series_uid']
        assert s['image'].dtype == np.float32 and s['image'].shape == (S, S)
        image = crop['image']
        if image.dtype == np.uint8:
            expected = image / 255.0
        elif image.min() >= 0 and image.max() <= 1:
            expected = image
        else:
            expected = (image - image.min()) / (image.max() - image.min())
        np.testing.assert_allclose(s['image'], expected, atol=1e-6)
        assert s['masks'].dtype == np.uint8 and s['masks'].shape == (4, S, S)
        expected_masks = np.stack([(np.asarray(m) > 0) for m in crop['masks']]).astype(np.uint8)
        np.testing.assert_array_equal(s['masks'], expected_masks)
        assert s['masks'][3].sum() == 0


def test_lidc_official_split_is_contiguous_blocks_in_pickle_order(tmp_path):
    # 25 crops whose pickle order is not their sorted order: s = floor(2.5) = 2, so val is
    # the first 2 crops in pickle order, test the next 2, train the other 21.
    crops = lidc_crops()
    crops.update({f'zz_extra_{i:02d}': dict(crop, series_uid=f'9.9.{i // 4}')
                  for i, crop in enumerate(list(lidc_crops().values()) + list(
                      lidc_crops().values())[:1])})
    order = list(reversed(list(crops)))
    src = write_pickle(tmp_path / 'ordered.pickle', {k: crops[k] for k in order})
    dst = tmp_path / 'official'
    meta = lidc.convert_lidc(str(src), str(dst), split='official')
    ids = lidc.safe_sample_ids(order)
    assert len(order) == 25
    assert split_ids(dst, 'val') == sorted(ids[:2])
    assert split_ids(dst, 'test') == sorted(ids[2:4])
    assert split_ids(dst, 'train') == sorted(ids[4:])
    assert meta['split_protocol'] == 'official' and meta['num_samples'] == dict(
        train=21, val=2, test=2)
    assert meta['series_in_two_splits'] >= 1  # the leak the by-series split avoids
    by_series = lidc.convert_lidc(str(src), str(tmp_path / 'series'))
    assert by_series['split_protocol'] == 'by-series' and by_series['series_in_two_splits'] == 0
    # a config asking for one protocol refuses a data root converted with the other
    assert len(LIDCDataset(data_root=str(dst), split='test', split_protocol='official',
                           pipeline=[])) == 2
    with pytest.raises(ValueError, match='--split official'):
        LIDCDataset(data_root=str(tmp_path / 'series'), split='test',
                    split_protocol='official', pipeline=[])
    assert load_cli('lidc').parse_args([str(src), 'out', '--split', 'official']).split == 'official'
    assert load_cli('lidc').parse_args([str(src), 'out']).split == 'by-series'
    with pytest.raises(lidc.LIDCConversionError, match='10 or more'):
        lidc.split_official(9)


def test_lidc_split_deterministic_by_seed(lidc_src, tmp_path):
    splits = {}
    for run, seed in (('a', 0), ('b', 0), ('c', 1), ('d', 2), ('e', 3)):
        lidc.convert_lidc(str(lidc_src), str(tmp_path / run), seed=seed)
        splits[run] = [split_ids(tmp_path / run, n) for n in ('train', 'val', 'test')]
    assert splits['a'] == splits['b']
    assert any(splits[r] != splits['a'] for r in 'cde')


@pytest.mark.slow
def test_lidc_cli_and_overwrite(lidc_src, tmp_path):
    dst = tmp_path / 'out'
    result = run_cli('lidc', lidc_src, dst, '--seed', 3)
    assert result.returncode == 0, result.stderr
    first = [split_ids(dst, n) for n in ('train', 'val', 'test')]
    result = run_cli('lidc', lidc_src, dst, '--seed', 3)
    assert result.returncode == 1 and '--overwrite' in result.stderr
    result = run_cli('lidc', lidc_src, dst, '--seed', 3, '--overwrite')
    assert result.returncode == 0, result.stderr
    assert [split_ids(dst, n) for n in ('train', 'val', 'test')] == first
    assert json.loads((dst / 'meta.json').read_text())['seed'] == 3


@pytest.mark.parametrize('change, words', [
    (lambda c: c['LIDC-IDRI-0001/slice 2.png'].pop('series_uid'), ['series_uid']),
    (lambda c: c['LIDC-IDRI-0001/slice 3.png']['masks'].pop(), ['got 3']),
    (lambda c: c['LIDC-IDRI-0002/slice 5.png']['masks'].__setitem__(1, np.zeros((S, S + 1))),
     ['mask 1', 'shape']),
    (lambda c: c['LIDC-IDRI-0000/slice 0.png'].__setitem__('image', np.zeros((S, S, 3))),
     ['image']),
    (lambda c: c['LIDC-IDRI-0003/slice 7.png']['masks'].__setitem__(2, np.full((S, S), 7)),
     ['mask 2', 'values']),
])
def test_lidc_bad_entries_name_the_key(tmp_path, change, words):
    crops = lidc_crops()
    change(crops)
    src = write_pickle(tmp_path / 'bad.pickle', crops)
    dst = tmp_path / 'out'
    with pytest.raises(lidc.LIDCConversionError) as err:
        lidc.convert_lidc(str(src), str(dst))
    message = str(err.value)
    # the one key changed is named (its slice number is unique among the keys)
    changed = [k for k, v in crops.items() if k in message]
    assert len(changed) == 1
    assert all(w in message for w in words), message
    assert not dst.exists() and [p.name for p in tmp_path.iterdir()] == ['bad.pickle']


def test_lidc_bad_pickle_names_file(tmp_path):
    src = tmp_path / 'broken.pickle'
    src.write_bytes(b'not a pickle at all')
    result = run_cli('lidc', src, tmp_path / 'out')
    assert result.returncode == 1
    assert 'cannot unpickle' in result.stderr and str(src) in result.stderr
    assert not (tmp_path / 'out').exists()
    with pytest.raises(lidc.LIDCConversionError, match='not a dict'):
        lidc.convert_lidc(str(write_pickle(tmp_path / 'list.pickle', [1, 2])),
                          str(tmp_path / 'out'))
    with pytest.raises(lidc.LIDCConversionError, match='does not exist'):
        lidc.convert_lidc(str(tmp_path / 'missing.pickle'), str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


def test_lidc_sample_id_collisions():
    ids = lidc.safe_sample_ids(['a/b', 'a b', 'c', '..d'])
    assert ids[2:] == ['c', 'd'] and len(set(ids)) == 4
    assert all(i.startswith('a_b_') and len(i) == len('a_b_') + 8 for i in ids[:2])


def test_lidc_dataset_items(lidc_src, tmp_path):
    dst = tmp_path / 'lidc'
    lidc.convert_lidc(str(lidc_src), str(dst))
    total = 0
    for split in ('train', 'val', 'test'):
        ds = LIDCDataset(data_root=str(dst), split=split, pipeline=[])
        ids = split_ids(dst, split)
        assert len(ds) == len(ids) > 0
        total += len(ds)
        info = ds.get_data_info(0)
        assert info['sample_id'] == ids[0] and info['num_annotators'] == 4
        assert info['img_path'] == str(dst / 'samples' / f'{ids[0]}.npz')
        assert info['label_map'] is None and info['reduce_zero_label'] is False
        assert info['seg_fields'] == []
        assert ds.metainfo['classes'] == ('background', 'nodule')
    assert total == 12
    # the generic class takes its classes from meta.json
    ds = MultiAnnotatorDataset(data_root=str(dst), split='val', pipeline=[])
    assert ds.metainfo['classes'] == ('background', 'nodule') and len(ds) > 0


def test_generic_dataset_reads_synthetic_lesions(tmp_path):
    from mmsam.datasets.synthetic.lesion_generator import generate_synthetic_lesions
    generate_synthetic_lesions(str(tmp_path / 'syn'), num_train=3, num_val=1, num_test=0,
                               size=32, num_annotators=2, seed=0)
    ds = MultiAnnotatorDataset(data_root=str(tmp_path / 'syn'), split='train', pipeline=[])
    assert len(ds) == 3 and ds.metainfo['classes'] == ('background', 'lesion')
    assert ds.get_data_info(2)['num_annotators'] == 2
    assert ds.get_data_info(2)['sample_id'] == 'lesion00002'


def test_dataset_errors(lidc_src, tmp_path):
    with pytest.raises(FileNotFoundError, match='lidc.py'):
        LIDCDataset(data_root=str(tmp_path / 'nothing'), pipeline=[])
    dst = tmp_path / 'lidc'
    lidc.convert_lidc(str(lidc_src), str(dst))
    with pytest.raises(FileNotFoundError, match="split 'val2'"):
        LIDCDataset(data_root=str(dst), split='val2', pipeline=[])
    with pytest.raises(ValueError, match='QUBIQ kidney'):
        QUBIQKidneyDataset(data_root=str(dst), split='train', pipeline=[])
    victim = split_ids(dst, 'test')[0]
    (dst / 'samples' / f'{victim}.npz').unlink()
    with pytest.raises(FileNotFoundError, match=victim):
        LIDCDataset(data_root=str(dst), split='test', pipeline=[])


# ------------------------------------------------------------------------------------------------
# QUBIQ kidney


def kidney_case(i):
    """A case's image (H, W) and 3 masks (0/1), seeded by index."""
    rng = np.random.default_rng(100 + i)
    image = rng.normal(size=(S, S + 2)) * 200 + 40
    masks = [(rng.random((S, S + 2)) > 0.6).astype(np.uint8) for _ in range(3)]
    return image, masks


def write_nifti(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4)), str(path))


def write_qubiq(src, n_train=5, n_val=2):
    """Training/ and Validation/ case folders; case01 of each has special storage."""
    i = 0
    for folder, n in (('training_data_v2/kidney/Training', n_train),
                      ('validation_data_v2/kidney/Validation', n_val)):
        for c in range(1, n + 1):
            image, masks = kidney_case(i)
            case = src / folder / f'case{c:02d}'
            write_nifti(case / 'image.nii.gz',
                        image[..., None] if (c == 1 and 'Train' in folder) else image)
            for k, m in enumerate(masks, 1):
                m = m * 255 if (c == 2 and k == 2) else m
                write_nifti(case / f'task01_seg{k:02d}.nii.gz', m.astype(np.uint8))
            i += 1
    return src


def expected_image(image):
    low, high = np.percentile(image, [0.5, 99.5])
    return (np.clip(image, low, high) - low) / (high - low)


def test_qubiq_convert(tmp_path):
    src = write_qubiq(tmp_path / 'src')
    # another task of the release is left out when the kidney's folders are named
    image, masks = kidney_case(0)
    write_nifti(src / 'training_data_v2/prostate/Training/case01/image.nii.gz', image)
    dst = tmp_path / 'qubiq'
    with pytest.warns(UserWarning, match='7 kidney cases'), \
            pytest.warns(UserWarning, match='2 validation cases'):
        meta = qubiq.convert_qubiq(str(src), str(dst))
    # Sorting would not find them: a release folder named so that validation sorts first.
    renamed = tmp_path / 'src2'
    (renamed / 'a_validation_data_v2').mkdir(parents=True)
    (src / 'validation_data_v2').rename(renamed / 'a_validation_data_v2' / 'kidney_val')
    (src / 'training_data_v2').rename(renamed / 'z_training')
    assert qubiq.choose_splits(qubiq.find_cases(str(renamed)), str(renamed))['test'] == [
        'a_validation_data_v2_kidney_val_kidney_Validation_case01',
        'a_validation_data_v2_kidney_val_kidney_Validation_case02']
    with pytest.raises(qubiq.QUBIQConversionError, match='--test-cases'):
        qubiq.release_test_cases(qubiq.find_cases(str(renamed / 'z_training')),
                                 str(renamed / 'z_training'))
    ids = sorted(meta['source']['cases'])
    assert len(ids) == 7 and not any('prostate' in i for i in ids)
    assert ids[0] == 'training_data_v2_kidney_Training_case01'
    # the test cases are the release's validation folder's, by name, not the last 4 sorted
    assert split_ids(dst, 'test') == [i for i in ids if 'Validation' in i] == ids[-2:]
    assert split_ids(dst, 'train') == ids[:-2]
    assert not (dst / 'splits' / 'val.txt').exists() and meta['splits'] == ['train', 'test']
    assert meta['classes'] == ['background', 'kidney'] and meta['num_annotators'] == 3
    for i, case_id in enumerate(ids):
        image, masks = kidney_case(i)
        s = read_sample(dst, case_id)
        assert s['image'].dtype == np.float32 and s['image'].shape == (S, S + 2)
        np.testing.assert_allclose(s['image'], expected_image(image), atol=1e-5)
        assert s['image'].min() == 0 and s['image'].max() == 1
        np.testing.assert_array_equal(s['masks'], np.stack(masks))  # incl. the 0/255 one
        assert s['masks'].dtype == np.uint8
    ds = QUBIQKidneyDataset(data_root=str(dst), split='test', pipeline=[])
    assert len(ds) == 2 and ds.get_data_info(1)['sample_id'] == ids[-1]
    assert ds.get_data_info(0)['num_annotators'] == 3
    with pytest.raises(FileNotFoundError, match='--val-cases'):
        QUBIQKidneyDataset(data_root=str(dst), split='val', pipeline=[])


@pytest.mark.slow
def test_qubiq_cli_case_lists(tmp_path):
    src = write_qubiq(tmp_path / 'src')
    (tmp_path / 'test.txt').write_text('# test\nvalidation_data_v2/kidney/Validation/case02\n'
                                       'training_data_v2_kidney_Training_case03\n')
    (tmp_path / 'val.txt').write_text('training_data_v2/kidney/Training/case05/\n')
    dst = tmp_path / 'out'
    result = run_cli('qubiq', src, dst, '--test-cases', tmp_path / 'test.txt',
                     '--val-cases', tmp_path / 'val.txt')
    assert result.returncode == 0, result.stderr
    assert 'warning: ' in result.stderr
    assert split_ids(dst, 'test') == ['training_data_v2_kidney_Training_case03',
                                      'validation_data_v2_kidney_Validation_case02']
    assert split_ids(dst, 'val') == ['training_data_v2_kidney_Training_case05']
    assert len(split_ids(dst, 'train')) == 4
    ds = QUBIQKidneyDataset(data_root=str(dst), split='val', pipeline=[])
    assert len(ds) == 1
    # 'case02' is ambiguous (in both folders); 'case09' does not exist
    (tmp_path / 'bad.txt').write_text('case09\n')
    result = run_cli('qubiq', src, tmp_path / 'out2', '--test-cases', tmp_path / 'bad.txt')
    assert result.returncode == 1 and "'case09'" in result.stderr
    (tmp_path / 'amb.txt').write_text('case02\n')
    with pytest.raises(qubiq.QUBIQConversionError, match='ambiguous'):
        qubiq.convert_qubiq(str(src), str(tmp_path / 'out2'),
                            test_cases=str(tmp_path / 'amb.txt'))
    assert not (tmp_path / 'out2').exists()


def test_qubiq_errors_name_the_file(tmp_path):
    src = write_qubiq(tmp_path / 'src', n_train=5, n_val=4)
    case = src / 'training_data_v2/kidney/Training/case04'
    write_nifti(case / 'task01_seg03.nii.gz', np.zeros((S, S), np.uint8))
    dst = tmp_path / 'out'
    with pytest.raises(qubiq.QUBIQConversionError) as err, pytest.warns(UserWarning):
        qubiq.convert_qubiq(str(src), str(dst))
    assert str(case / 'task01_seg03.nii.gz') in str(err.value) and 'shape' in str(err.value)
    assert not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == ['src']
    (case / 'task01_seg03.nii.gz').unlink()
    with pytest.raises(qubiq.QUBIQConversionError, match='found 2 annotator'):
        with pytest.warns(UserWarning):
            qubiq.convert_qubiq(str(src), str(dst))
    (case / 'image.nii.gz').write_bytes(b'broken')
    with pytest.raises(qubiq.QUBIQConversionError) as err, pytest.warns(UserWarning):
        qubiq.convert_qubiq(str(src), str(dst))
    assert str(case / 'image.nii.gz') in str(err.value)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(qubiq.QUBIQConversionError, match='no case folder'):
        qubiq.convert_qubiq(str(empty), str(dst))
    assert not dst.exists()

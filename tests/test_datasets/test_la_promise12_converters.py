"""LA and PROMISE12 converters: tiny sources in the real layouts, converted and read back."""
import importlib
import json
import os
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from conftest import load_script
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.models.segmentors.base import BaseSegmentor

from mmsam.datasets.la_dataset import LADataset  # noqa: F401 (registers it)
from mmsam.datasets.promise12_dataset import PROMISE12Dataset  # noqa: F401 (registers it)
from mmsam.registry import DATASETS, METRICS, MODELS

REPO = Path(__file__).resolve().parents[2]


def load_converter(name):
    """The library module of tools/dataset_converters/<name>.py."""
    return importlib.import_module(f'mmsam.datasets.converters.{name}')


def load_cli(name):
    """tools/dataset_converters/<name>.py, the command line (tools/ is not a package)."""
    return load_script(f'tools/dataset_converters/{name}.py')


la = load_converter('la')
promise12 = load_converter('promise12')

# ------------------------------------------------------------------------------------------------
# source writers (the real layouts)

LA_SHAPE = (16, 8, 3)  # h5 (X, Y, Z); X, Y divide 512 so resizing back and forth is exact


def la_arrays(case):
    """A case's h5 arrays, (X, Y, Z), z-scored-like image and a 0/1 label, seeded by name."""
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    image = rng.normal(size=LA_SHAPE) * 2.0 - 0.5
    label = (rng.random(LA_SHAPE) > 0.6).astype(np.uint8)
    return image, label


def write_la_h5(src, case, spacing=None, label=None):
    path = src / la.IMAGE_DIR / case / la.H5_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    image, own_label = la_arrays(case)
    with h5py.File(path, 'w') as f:
        f.create_dataset('image', data=image)
        f.create_dataset('label', data=own_label if label is None else label)
        if spacing is not None:
            f.attrs['spacing'] = np.asarray(spacing)
    return path


def make_la_source(src, train, test, spacing=None):
    """UA-MT layout: train.list, test.list, "2018LA_Seg_Training Set/<case>/mri_norm2.h5"."""
    src.mkdir(parents=True, exist_ok=True)
    (src / 'train.list').write_text(''.join(f'{c}\n' for c in train))
    (src / 'test.list').write_text(''.join(f'{c}\n' for c in test) + '\n')
    for case in (*train, *test):
        write_la_h5(src, case, spacing=(spacing or {}).get(case))
    return src


MET_CODES = {'MET_UCHAR': 'u1', 'MET_SHORT': 'i2', 'MET_USHORT': 'u2', 'MET_FLOAT': 'f4'}


def write_mhd(header_path, array, spacing_xyz, element_type, compressed=False, msb=False,
              data_name=None):
    """Write a MetaImage header and its data file (.raw, or zlib-compressed .zraw)."""
    header_path = Path(header_path)
    data_name = data_name or header_path.stem + ('.zraw' if compressed else '.raw')
    data = np.ascontiguousarray(array).astype(('>' if msb else '<') + MET_CODES[element_type])
    payload = zlib.compress(data.tobytes()) if compressed else data.tobytes()
    (header_path.parent / data_name).write_bytes(payload)
    lines = ['ObjectType = Image', f'NDims = {array.ndim}', 'BinaryData = True',
             f'BinaryDataByteOrderMSB = {msb}', f'CompressedData = {compressed}']
    if compressed:
        lines.append(f'CompressedDataSize = {len(payload)}')
    lines += ['TransformMatrix = 1 0 0 0 1 0 0 0 1', 'Offset = 0 0 0',
              'AnatomicalOrientation = RAI',
              'ElementSpacing = ' + ' '.join(str(s) for s in spacing_xyz),
              'DimSize = ' + ' '.join(str(n) for n in array.shape[::-1]),
              f'ElementType = {element_type}', f'ElementDataFile = {data_name}']
    header_path.write_text('\n'.join(lines) + '\n')


P12_SHAPE = (3, 8, 16)  # (z, y, x) as a numpy array; DimSize 16 8 3
P12_SPACING_XYZ = (0.625, 0.5, 3.6)


def p12_arrays(case):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    image = rng.integers(0, 1000, size=P12_SHAPE).astype(np.int16)
    image.flat[0] = 30000  # a bright outlier that the percentile clip must remove
    label = (rng.random(P12_SHAPE) > 0.7).astype(np.uint8)
    return image, label


def make_promise12_source(src, cases, compressed=()):
    src.mkdir(parents=True, exist_ok=True)
    for case in cases:
        image, label = p12_arrays(case)
        write_mhd(src / f'{case}.mhd', image, P12_SPACING_XYZ, 'MET_SHORT',
                  compressed=case in compressed)
        write_mhd(src / f'{case}_segmentation.mhd', label, P12_SPACING_XYZ, 'MET_UCHAR')
    return src


def la_expected(case):
    """By hand: min-max of the whole volume, slice k = h5 [:, :, k]."""
    image, label = la_arrays(case)
    norm = (image - image.min()) / (image.max() - image.min())
    return np.moveaxis(norm, 2, 0), np.moveaxis(label, 2, 0)


def p12_expected(case):
    image, label = p12_arrays(case)
    lo, hi = np.percentile(image.astype(np.float64), (0.5, 99.5))
    return (np.clip(image, lo, hi) - lo) / (hi - lo), label


def read_lines(path):
    return Path(path).read_text().split()


def assert_nothing_written(dst):
    """No output and no temporary folder left next to it."""
    assert not dst.exists()
    if dst.parent.exists():
        assert not [p for p in dst.parent.iterdir() if p.name.startswith(f'.{dst.name}.')]


# ------------------------------------------------------------------------------------------------
# CLI runs (started together: each process spends seconds importing mmseg)

LA_TRAIN = [f'LA{i:02d}CASEID' for i in range(6)]
LA_TEST = ['LA90CASEID', 'LA91CASEID']
P12_ALL = [f'Case{i:02d}' for i in range(50)]


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    la_src = make_la_source(root / 'la_src', LA_TRAIN, LA_TEST)
    p12_src = make_promise12_source(root / 'p12_src', P12_ALL, compressed=('Case01', 'Case45'))
    commands = {
        'la': [str(REPO / 'tools/dataset_converters/la.py'), str(la_src), str(root / 'la'),
               '--labelled', '2', '--all-train', '--spacing', '0.625', '0.625', '0.625'],
        'promise12': [str(REPO / 'tools/dataset_converters/promise12.py'), str(p12_src),
                      str(root / 'promise12'), '--all-train', '--labelled', '3',
                      '--test-list', 'last10'],  # the MLB-Seg-style split, not H-SAM's lists
    }
    procs = {k: subprocess.Popen([sys.executable, *cmd], cwd=root, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
             for k, cmd in commands.items()}
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[key] = SimpleNamespace(returncode=proc.returncode, stdout=out, stderr=err,
                                       dst=root / key)
    return results


# ------------------------------------------------------------------------------------------------
# LA


def test_la_conversion_by_hand(tmp_path):
    src = make_la_source(tmp_path / 'src', LA_TRAIN, LA_TEST)
    dst = tmp_path / 'data' / 'la'
    with pytest.warns(UserWarning, match='6 training / 2 test cases'):
        meta = la.convert_la(str(src), str(dst))
    # Default: the first 4 lines of train.list are the labelled cases, all their slices.
    assert meta['labelled_cases'] == LA_TRAIN[:4]
    names = read_lines(dst / 'splits/train.txt')
    assert names == [f'{c}_slice{k:03d}' for c in LA_TRAIN[:4] for k in range(LA_SHAPE[2])]
    assert sorted(os.listdir(dst / 'train_slices')) == sorted(f'{n}.npz' for n in names)
    assert not (dst / 'splits/train_all.txt').exists()
    assert read_lines(dst / 'splits/test.txt') == LA_TEST
    image, label = la_expected(LA_TRAIN[2])
    with np.load(dst / 'train_slices' / f'{LA_TRAIN[2]}_slice001.npz') as npz:
        assert npz['image'].dtype == np.float32 and npz['label'].dtype == np.uint8
        assert npz['image'].shape == (LA_SHAPE[0], LA_SHAPE[1])  # (X, Y) = h5[:, :, 1]
        np.testing.assert_allclose(npz['image'], image[1], atol=1e-6)
        np.testing.assert_array_equal(npz['label'], label[1])
    image, label = la_expected(LA_TEST[1])
    with np.load(dst / 'test_volumes' / f'{LA_TEST[1]}.npz') as npz:
        assert npz['image'].shape == (LA_SHAPE[2], LA_SHAPE[0], LA_SHAPE[1])
        np.testing.assert_allclose(npz['image'], image, atol=1e-6)
        assert npz['image'].min() == 0 and npz['image'].max() == pytest.approx(1)
        np.testing.assert_array_equal(npz['label'], label)
        assert tuple(npz['spacing']) == (1.0, 1.0, 1.0)
    written = json.loads((dst / 'meta.json').read_text())
    assert written['classes'] == ['background', 'left_atrium']
    assert len(written['palette']) == 2 and written['spacing_known'] is False
    assert 'UA-MT' in written['source']['release']
    assert [p.name for p in dst.parent.iterdir()] == ['la']  # no temporary folder left


def test_la_labelled_list_all_train_and_file_spacing(tmp_path):
    src = make_la_source(tmp_path / 'src', LA_TRAIN, LA_TEST,
                         spacing={LA_TEST[0]: (0.5, 0.6, 2.0)})  # (x, y, z) in the file
    (tmp_path / 'labelled.txt').write_text(f'{LA_TRAIN[5]}\n\n{LA_TRAIN[1]}\n')
    dst = tmp_path / 'la'
    with pytest.warns(UserWarning):
        la.convert_la(str(src), str(dst), labelled_list=str(tmp_path / 'labelled.txt'),
                      all_train=True)
    depth = LA_SHAPE[2]
    assert read_lines(dst / 'splits/train.txt') == [
        f'{c}_slice{k:03d}' for c in (LA_TRAIN[5], LA_TRAIN[1]) for k in range(depth)]
    assert read_lines(dst / 'splits/train_all.txt') == [
        f'{c}_slice{k:03d}' for c in LA_TRAIN for k in range(depth)]
    assert len(os.listdir(dst / 'train_slices')) == len(LA_TRAIN) * depth
    with np.load(dst / 'test_volumes' / f'{LA_TEST[0]}.npz') as npz:
        assert tuple(npz['spacing']) == (2.0, 0.5, 0.6)  # reordered like the axes: (z, x, y)
    with np.load(dst / 'test_volumes' / f'{LA_TEST[1]}.npz') as npz:
        assert tuple(npz['spacing']) == (1.0, 1.0, 1.0)


@pytest.mark.slow
def test_la_cli(cli_runs):
    run = cli_runs['la']
    assert run.returncode == 0, run.stderr
    assert 'warning: ' in run.stderr and 'not UA-MT' in run.stderr
    assert read_lines(run.dst / 'splits/train.txt')[-1] == f'{LA_TRAIN[1]}_slice002'
    assert len(read_lines(run.dst / 'splits/train_all.txt')) == len(LA_TRAIN) * LA_SHAPE[2]
    with np.load(run.dst / 'test_volumes' / f'{LA_TEST[0]}.npz') as npz:
        assert tuple(npz['spacing']) == (0.625, 0.625, 0.625)
    assert json.loads((run.dst / 'meta.json').read_text())['spacing_known'] is True


@pytest.mark.parametrize('damage', ['garbage', 'missing', 'no_label', 'label_2'])
def test_la_bad_source_names_the_file_and_writes_nothing(tmp_path, damage, capsys):
    src = make_la_source(tmp_path / 'src', LA_TRAIN, LA_TEST)
    bad = src / la.IMAGE_DIR / LA_TEST[1] / la.H5_NAME  # the last file read
    if damage == 'garbage':
        bad.write_bytes(b'not an hdf5 file at all')
    elif damage == 'missing':
        bad.unlink()
    elif damage == 'no_label':
        with h5py.File(bad, 'w') as f:
            f.create_dataset('image', data=np.zeros(LA_SHAPE))
    else:
        write_la_h5(src, LA_TEST[1], label=np.full(LA_SHAPE, 2, np.uint8))
    dst = tmp_path / 'out' / 'la'
    match = {'garbage': 'cannot read', 'missing': 'do not exist', 'no_label': r"lacks.*'label'",
             'label_2': 'label values'}[damage]
    with pytest.warns(UserWarning), pytest.raises(la.LAConversionError, match=match) as info:
        la.convert_la(str(src), str(dst))
    assert str(bad) in str(info.value)
    assert_nothing_written(dst)
    assert load_cli('la').main([str(src), str(dst)]) == 1
    assert str(bad) in capsys.readouterr().err
    assert_nothing_written(dst)


def test_la_argument_and_destination_errors(tmp_path):
    src = make_la_source(tmp_path / 'src', LA_TRAIN, LA_TEST)
    (tmp_path / 'labelled.txt').write_text(f'{LA_TEST[0]}\n')
    with pytest.warns(UserWarning), pytest.raises(la.LAConversionError, match='not in train.list'):
        la.convert_la(str(src), str(tmp_path / 'a'), labelled_list=str(tmp_path / 'labelled.txt'))
    with pytest.warns(UserWarning), pytest.raises(la.LAConversionError, match='choose 1 to 6'):
        la.convert_la(str(src), str(tmp_path / 'a'), labelled=7)
    (src / 'test.list').write_text(f'{LA_TRAIN[0]}\n')
    with pytest.raises(la.LAConversionError, match='in both train.list and test.list'):
        la.convert_la(str(src), str(tmp_path / 'a'))
    assert_nothing_written(tmp_path / 'a')
    # A previous output is replaced only with overwrite; a foreign folder never.
    (src / 'test.list').write_text(f'{LA_TEST[0]}\n')
    dst = tmp_path / 'b'
    with pytest.warns(UserWarning):
        la.convert_la(str(src), str(dst), labelled=1)
        with pytest.raises(la.LAConversionError, match='--overwrite'):
            la.convert_la(str(src), str(dst), labelled=2)
        la.convert_la(str(src), str(dst), labelled=2, overwrite=True)
    assert len(read_lines(dst / 'splits/train.txt')) == 2 * LA_SHAPE[2]
    foreign = tmp_path / 'c'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(la.LAConversionError, match='refusing'):
        la.convert_la(str(src), str(foreign), overwrite=True)
    assert (foreign / 'notes.txt').read_text() == 'mine'


# ------------------------------------------------------------------------------------------------
# MetaImage reader


@pytest.mark.parametrize('element_type,compressed,msb', [
    ('MET_SHORT', False, False), ('MET_USHORT', False, True), ('MET_FLOAT', True, False),
    ('MET_UCHAR', True, True)])
def test_read_metaimage_round_trip(tmp_path, element_type, compressed, msb):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 200, size=(3, 4, 5)).astype(MET_CODES[element_type])
    write_mhd(tmp_path / 'a.mhd', array, (0.7, 0.8, 2.5), element_type, compressed, msb)
    out, spacing = promise12.read_metaimage(str(tmp_path / 'a.mhd'))
    assert out.shape == (3, 4, 5)  # DimSize 5 4 3 (x, y, z) -> (z, y, x)
    assert out.dtype == np.dtype(MET_CODES[element_type]) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    assert spacing == (2.5, 0.8, 0.7)


def test_read_metaimage_local_data_and_header_size(tmp_path):
    array = np.arange(24, dtype='<i2').reshape(2, 3, 4)
    header = ('ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n'
              'ElementSpacing = 1 2 3\nElementDataFile = LOCAL\n')
    (tmp_path / 'a.mha').write_bytes(header.encode() + array.tobytes())
    out, spacing = promise12.read_metaimage(str(tmp_path / 'a.mha'))
    np.testing.assert_array_equal(out, array)
    assert spacing == (3.0, 2.0, 1.0)
    (tmp_path / 'b.raw').write_bytes(b'\x00' * 7 + array.tobytes())
    (tmp_path / 'b.mhd').write_text(header.replace('LOCAL', 'b.raw').replace(
        'ElementSpacing', 'HeaderSize = 7\nElementSpacing'))
    np.testing.assert_array_equal(promise12.read_metaimage(str(tmp_path / 'b.mhd'))[0], array)


@pytest.mark.parametrize('damage', ['truncated', 'bad_zlib', 'no_data', 'bad_type', 'not_header'])
def test_read_metaimage_errors_name_the_file(tmp_path, damage):
    array = np.ones((2, 3, 4), np.int16)
    write_mhd(tmp_path / 'a.mhd', array, (1, 1, 1), 'MET_SHORT', compressed=damage == 'bad_zlib')
    named = tmp_path / ('a.zraw' if damage == 'bad_zlib' else 'a.raw')
    if damage == 'truncated':
        named.write_bytes(named.read_bytes()[:-2])
    elif damage == 'bad_zlib':
        named.write_bytes(b'\x78\x9c garbage')
    elif damage == 'no_data':
        named.unlink()
    elif damage == 'bad_type':
        text = (tmp_path / 'a.mhd').read_text().replace('MET_SHORT', 'MET_HALF')
        (tmp_path / 'a.mhd').write_text(text)
        named = tmp_path / 'a.mhd'
    else:
        (tmp_path / 'a.mhd').write_bytes(b'\x89\x00\x17binary junk\n')
        named = tmp_path / 'a.mhd'
    with pytest.raises(promise12.PROMISE12ConversionError) as info:
        promise12.read_metaimage(str(tmp_path / 'a.mhd'))
    assert str(named) in str(info.value)


# ------------------------------------------------------------------------------------------------
# PROMISE12


P12_SMALL = [f'Case{i:02d}' for i in range(6)]


def test_promise12_conversion_by_hand(tmp_path):
    src = make_promise12_source(tmp_path / 'src', P12_SMALL, compressed=('Case01', 'Case05'))
    dst = tmp_path / 'promise12'
    with pytest.warns(UserWarning, match='has 6 cases'):
        meta = promise12.convert_promise12(str(src), str(dst), test_cases=['Case04', 'Case05'])
    assert meta['train_cases'] == P12_SMALL[:4]
    assert meta['labelled_cases'] == ['Case00', 'Case01', 'Case02']
    depth = P12_SHAPE[0]
    assert read_lines(dst / 'splits/train.txt') == [
        f'Case{i:02d}_slice{k:03d}' for i in range(3) for k in range(depth)]
    assert read_lines(dst / 'splits/test.txt') == ['Case04', 'Case05']
    assert not (dst / 'splits/train_all.txt').exists()
    image, label = p12_expected('Case01')  # read from a .zraw
    with np.load(dst / 'train_slices/Case01_slice002.npz') as npz:
        assert npz['image'].shape == P12_SHAPE[1:]
        np.testing.assert_allclose(npz['image'], image[2], atol=1e-6)
        np.testing.assert_array_equal(npz['label'], label[2])
    image, label = p12_expected('Case05')
    with np.load(dst / 'test_volumes/Case05.npz') as npz:
        np.testing.assert_allclose(npz['image'], image, atol=1e-6)
        np.testing.assert_array_equal(npz['label'], label)
        assert tuple(npz['spacing']) == (3.6, 0.5, 0.625)
        # The outlier (30000 among values < 1000) is clipped, not stretching the range.
        assert npz['image'].flat[0] == 1.0 and np.median(npz['image']) > 0.3
    written = json.loads((dst / 'meta.json').read_text())
    assert written['classes'] == ['background', 'prostate'] and written['spacing_known']


def test_promise12_labelled_and_test_lists(tmp_path):
    src = make_promise12_source(tmp_path / 'src', P12_SMALL)
    (tmp_path / 'labelled.txt').write_text('Case03\n1\n')
    (tmp_path / 'test.txt').write_text('Case00.mhd\nCase02\n')
    dst = tmp_path / 'promise12'
    with pytest.warns(UserWarning):
        meta = promise12.convert_promise12(
            str(src), str(dst), labelled_list=str(tmp_path / 'labelled.txt'),
            test_list=str(tmp_path / 'test.txt'), all_train=True)
    assert meta['test_cases'] == ['Case00', 'Case02']
    assert meta['train_cases'] == ['Case01', 'Case03', 'Case04', 'Case05']
    depth = P12_SHAPE[0]
    assert read_lines(dst / 'splits/train.txt') == [
        f'{c}_slice{k:03d}' for c in ('Case03', 'Case01') for k in range(depth)]
    assert len(read_lines(dst / 'splits/train_all.txt')) == 4 * depth
    (tmp_path / 'labelled.txt').write_text('Case02\n')  # a test case
    with pytest.warns(UserWarning), pytest.raises(promise12.PROMISE12ConversionError,
                                                  match='not training cases'):
        promise12.convert_promise12(str(src), str(tmp_path / 'x'),
                                    labelled_list=str(tmp_path / 'labelled.txt'),
                                    test_list=str(tmp_path / 'test.txt'))


def test_promise12_cli_default_split(cli_runs):
    run = cli_runs['promise12']
    assert run.returncode == 0, run.stderr
    assert read_lines(run.dst / 'splits/test.txt') == P12_ALL[40:]
    assert read_lines(run.dst / 'splits/train.txt') == [
        f'Case{i:02d}_slice{k:03d}' for i in range(3) for k in range(P12_SHAPE[0])]
    assert len(read_lines(run.dst / 'splits/train_all.txt')) == 40 * P12_SHAPE[0]
    image, label = p12_expected('Case45')  # a compressed test case
    with np.load(run.dst / 'test_volumes/Case45.npz') as npz:
        np.testing.assert_allclose(npz['image'], image, atol=1e-6)
        np.testing.assert_array_equal(npz['label'], label)
    assert 'warning' not in run.stderr


@pytest.mark.parametrize('damage', ['missing_raw', 'missing_seg', 'truncated', 'label_255'])
def test_promise12_bad_source_names_the_file_and_writes_nothing(tmp_path, damage, capsys):
    src = make_promise12_source(tmp_path / 'src', P12_SMALL)
    bad = {'missing_raw': src / 'Case05.raw', 'missing_seg': src / 'Case05_segmentation.mhd',
           'truncated': src / 'Case05.raw', 'label_255': src / 'Case05_segmentation.mhd'}[damage]
    if damage.startswith('missing'):
        bad.unlink()
    elif damage == 'truncated':
        bad.write_bytes(bad.read_bytes()[:10])
    else:
        write_mhd(bad, p12_arrays('Case05')[1] * 255, P12_SPACING_XYZ, 'MET_UCHAR')
    dst = tmp_path / 'out' / 'promise12'
    with pytest.warns(UserWarning), pytest.raises(promise12.PROMISE12ConversionError) as info:
        promise12.convert_promise12(str(src), str(dst), test_cases=['Case04', 'Case05'])
    assert str(bad) in str(info.value)
    assert_nothing_written(dst)
    (tmp_path / 'test.txt').write_text('Case04\nCase05\n')
    assert load_cli('promise12').main([str(src), str(dst), '--test-list', str(tmp_path / 'test.txt')]) == 1
    assert str(bad) in capsys.readouterr().err
    assert_nothing_written(dst)


# ------------------------------------------------------------------------------------------------
# the converted data through the base configs


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp('converted')
    la_src = make_la_source(root / 'la_src', LA_TRAIN[:3], LA_TEST)
    p12_src = make_promise12_source(root / 'p12_src', P12_SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        la.convert_la(str(la_src), str(root / 'la'), labelled=2)
        promise12.convert_promise12(str(p12_src), str(root / 'promise12'),
                                    test_cases=['Case04', 'Case05'])
    return dict(la=(root / 'la', LA_TEST, (LA_SHAPE[0], LA_SHAPE[1]), 'left_atrium'),
                promise12=(root / 'promise12', ['Case04', 'Case05'], P12_SHAPE[1:], 'prostate'))


def _dataset(name, data_root, loader):
    cfg = Config.fromfile(REPO / 'configs/_base_/datasets' / f'{name}.py')
    dataset_cfg = cfg[loader].dataset
    dataset_cfg.data_root = str(data_root)
    return cfg, DATASETS.build(dataset_cfg)


@pytest.mark.parametrize('name', ['la', 'promise12'])
def test_base_config_train_pipeline_resizes_to_512(converted, name):
    data_root, _, shape, structure = converted[name]
    cfg = Config.fromfile(REPO / 'configs/_base_/datasets' / f'{name}.py')
    # H-SAM's augmentation comes before the resize; take it out to compare the label as is.
    steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert steps == ['LoadNpzSlice', 'RandomCascade', 'Resize', 'PackSegInputs']
    cfg.train_dataloader.dataset.pipeline.pop(1)
    cfg.train_dataloader.dataset.data_root = str(data_root)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert type(dataset).__name__ == cfg.dataset_type
    assert dataset.metainfo['classes'] == ('background', structure)
    assert len(dataset) == len(read_lines(data_root / 'splits/train.txt'))
    item = dataset[1]
    assert item['inputs'].shape == (3, 512, 512)
    gt = item['data_samples'].gt_sem_seg.data
    assert gt.shape == (1, 512, 512)
    raw = np.load(item['data_samples'].img_path)['label']
    assert raw.shape == shape
    # Nearest-neighbour resize of the label: same classes, same foreground share.
    assert set(torch.unique(gt).tolist()) <= {0, 1}
    assert gt.float().mean().item() == pytest.approx(raw.mean(), abs=0.02)


@pytest.mark.parametrize('name', ['la', 'promise12'])
def test_base_config_test_pipeline_keeps_label_at_original_shape(converted, name):
    """Image at 512 x 512, label at ori_shape; predictions resized back match it exactly."""
    data_root, cases, shape, _ = converted[name]
    cfg, dataset = _dataset(name, data_root, 'test_dataloader')
    items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == len(cases) * 3
    sample = items[0]['data_samples']
    assert items[0]['inputs'].shape == (3, 512, 512)
    assert sample.img_shape == (512, 512) and sample.ori_shape == shape
    assert sample.gt_sem_seg.data.shape == (1, *shape)
    # What a segmentor does with them: SAM's data preprocessor, then logits at the input size
    # (here the ground truth's one-hot, upsampled) resized to ori_shape by postprocess_result.
    preprocessor = MODELS.build(dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
                                     size=(512, 512)))
    batch = preprocessor(pseudo_collate(items), training=False)
    assert batch['inputs'].shape == (len(items), 3, 512, 512)
    gts = torch.stack([s.gt_sem_seg.data[0] for s in batch['data_samples']])
    logits = torch.nn.functional.one_hot(gts.long(), 2).permute(0, 3, 1, 2).float() * 10
    logits = torch.nn.functional.interpolate(logits, size=(512, 512), mode='nearest')
    samples = BaseSegmentor.postprocess_result(SimpleNamespace(align_corners=False), logits,
                                               batch['data_samples'])
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    metric.process({}, [s.to_dict() for s in samples])
    for s in samples:
        assert s.pred_sem_seg.data.shape == s.gt_sem_seg.data.shape == (1, *shape)
    scores = metric.compute_metrics(metric.results)
    assert scores['mDice'] == pytest.approx(100.0) and scores['mHD95'] == pytest.approx(0.0)
    # Without the KeyMapper, Resize would also resize the label away from ori_shape.
    plain = [t for t in cfg.test_pipeline if t['type'] != 'KeyMapper']
    plain.insert(1, dict(type='Resize', scale=(512, 512), keep_ratio=False))
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.update(data_root=str(data_root), pipeline=plain)
    assert DATASETS.build(dataset_cfg)[0]['data_samples'].gt_sem_seg.data.shape == (1, 512, 512)


@pytest.mark.parametrize('name,other', [('la', 'promise12'), ('promise12', 'la')])
def test_dataset_names_its_converter_and_rejects_other_data(converted, tmp_path, name, other):
    cfg = Config.fromfile(REPO / 'configs/_base_/datasets' / f'{name}.py')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path / name)
    with pytest.raises(FileNotFoundError,
                       match=rf'meta\.json not found.*dataset_converters/{name}\.py SRC'):
        DATASETS.build(dataset_cfg)
    dataset_cfg.data_root = str(converted[other][0])  # same number of classes, other data
    with pytest.raises(ValueError, match='lists classes'):
        DATASETS.build(dataset_cfg)

"""tools/dataset_converters/nifti_folder.py on a tiny fake SRC/images + SRC/labels tree.

Expected arrays are computed with plain numpy from the arrays written into the NIfTI files.
"""
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import nnunet_fingerprint_stats

from mmsam.datasets import VolumeSliceDataset
from mmsam.datasets.io.data_root import read_split
from mmsam.datasets.io.npz import load_npz

REPO = Path(__file__).resolve().parents[2]
XYZ = (10, 8, 3)  # stored (x, y, z): converted volumes are (3, 8, 10)
ZOOMS = (0.8, 0.7, 2.5)  # (x, y, z) mm


@pytest.fixture(scope='module')
def conv():
    return importlib.import_module('mmsam.datasets.converters.nifti_folder')


def save_nii(path, array, zooms=ZOOMS):
    nib.save(nib.Nifti1Image(array, np.diag([*zooms, 1.0])), str(path))


def write_tree(root, names=('liver_001', 'liver_002', 'liver_003'), seed=0):
    """SRC/images/<case>.nii.gz (HU) and SRC/labels/<case>.nii.gz (ids 0-2); returns arrays."""
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True)
    (root / 'labels').mkdir()
    cases = {}
    for name in names:
        hu = rng.integers(-300, 400, XYZ).astype(np.float32)
        label = np.zeros(XYZ, np.uint8)
        label[2:7, 1:5, :] = 1
        label[7:9, 5:7, 1] = 2
        save_nii(root / 'images' / f'{name}.nii.gz', hu)
        save_nii(root / 'labels' / f'{name}.nii.gz', label)
        cases[name] = (hu, label)
    return cases


def dhw(array):
    return np.transpose(array, (2, 1, 0))


def test_window_conversion_with_train_volumes(conv, tmp_path):
    cases = write_tree(tmp_path / 'src')
    dst = tmp_path / 'data'
    meta = conv.convert_nifti_folder(str(tmp_path / 'src'), str(dst), ['liver_003'],
                                     classes=['background', 'liver', 'tumour'],
                                     train_volumes=True)
    assert read_split(str(dst), 'test') == ['liver_003']
    assert read_split(str(dst), 'train_volumes') == ['liver_001', 'liver_002']
    assert read_split(str(dst), 'train') == [f'liver_00{c}_slice{k:03d}' for c in (1, 2)
                                             for k in range(3)]
    hu, label = cases['liver_003']
    test = np.load(dst / 'test_volumes' / 'liver_003.npz')
    expected = (np.clip(dhw(hu), -125, 275) + 125) / 400
    np.testing.assert_allclose(test['image'], expected, atol=1e-6)
    np.testing.assert_array_equal(test['label'], dhw(label))
    np.testing.assert_allclose(test['spacing'], ZOOMS[::-1])
    hu, label = cases['liver_001']
    slice1 = load_npz(str(dst / 'train_slices' / 'liver_001_slice001.npz'))
    np.testing.assert_array_equal(slice1['label'], label[:, :, 1].T)
    volume = np.load(dst / 'train_volumes' / 'liver_001.npz')
    np.testing.assert_array_equal(volume['label'], dhw(label))
    on_disk = json.loads((dst / 'meta.json').read_text())
    assert on_disk == meta
    assert meta['classes'] == ['background', 'liver', 'tumour'] and len(meta['palette']) == 3
    assert meta['intensity'] == 'unit' and meta['hu_window'] == [-125.0, 275.0]
    assert meta['ct_foreground'] is None and meta['target_spacing'] is None
    # The generic slice/volume dataset reads it, classes from meta.json.
    dataset = VolumeSliceDataset(data_root=str(dst), split='test', pipeline=[])
    assert dataset.metainfo['classes'] == ('background', 'liver', 'tumour')
    assert len(dataset) == 3


def test_hu_zscore_window_and_default_classes(conv, tmp_path):
    cases = write_tree(tmp_path / 'src')
    meta = conv.convert_nifti_folder(str(tmp_path / 'src'), str(tmp_path / 'hu'),
                                     ['liver_001'], intensity='hu')
    assert meta['classes'] == ['background', 'class1', 'class2']
    assert meta['intensity'] == 'hu' and meta['hu_window'] is None
    # nnU-Net's fingerprint over the training cases (each weighs the same), (z, y, x) arrays
    assert meta['ct_foreground'] == nnunet_fingerprint_stats(
        [(dhw(cases[c][0]), dhw(cases[c][1])) for c in ('liver_002', 'liver_003')])
    image = np.load(tmp_path / 'hu' / 'test_volumes' / 'liver_001.npz')['image']
    np.testing.assert_array_equal(image, dhw(cases['liver_001'][0]))

    meta = conv.convert_nifti_folder(str(tmp_path / 'src'), str(tmp_path / 'z'), ['liver_001'],
                                     intensity='zscore')
    image = np.load(tmp_path / 'z' / 'test_volumes' / 'liver_001.npz')['image']
    raw = dhw(cases['liver_001'][0]).astype(np.float64)
    np.testing.assert_allclose(image, (raw - raw.mean()) / raw.std(), atol=1e-5)
    assert meta['intensity'] == 'zscore'

    conv.convert_nifti_folder(str(tmp_path / 'src'), str(tmp_path / 'w'), ['liver_001'],
                              window=(0, 100))
    image = np.load(tmp_path / 'w' / 'test_volumes' / 'liver_001.npz')['image']
    np.testing.assert_allclose(image, np.clip(raw, 0, 100) / 100, atol=1e-6)


def test_target_spacing_keeps_the_native_grid(conv, tmp_path):
    cases = write_tree(tmp_path / 'src')
    meta = conv.convert_nifti_folder(str(tmp_path / 'src'), str(tmp_path / 'r'), ['liver_003'],
                                     target_spacing='2.5,1.4,1.6')
    test = np.load(tmp_path / 'r' / 'test_volumes' / 'liver_003.npz')
    assert test['image'].shape == (3, 4, 5)
    np.testing.assert_array_equal(test['native_label'], dhw(cases['liver_003'][1]))
    assert test['native_shape'].tolist() == [3, 8, 10]
    assert meta['target_spacing'] == [2.5, 1.4, 1.6]


@pytest.mark.parametrize('problem, message', [
    ('orphan_label', "label\\(s\\) without an image in .*images: \\['liver_009'\\]"),
    ('missing_label', "image\\(s\\) without a label in .*labels: \\['liver_002'\\]"),
    ('bad_id', 'liver_002.nii.gz: unknown label id\\(s\\) \\[5\\]'),
    ('shape', 'liver_002.nii.gz has shape .* the pair does not match'),
    ('unknown_test', "test case\\(s\\) \\['liver_042'\\] are not among the cases"),
    ('all_test', 'at least one test and one training case'),
    ('window_hu', '--window is for --intensity window'),
])
def test_bad_input_fails_clearly_and_leaves_nothing(conv, tmp_path, problem, message):
    src = tmp_path / 'src'
    write_tree(src)
    test_cases, kwargs = ['liver_003'], dict(classes=['background', 'liver', 'tumour'])
    if problem == 'orphan_label':
        save_nii(src / 'labels' / 'liver_009.nii.gz', np.zeros(XYZ, np.uint8))
    elif problem == 'missing_label':
        (src / 'labels' / 'liver_002.nii.gz').unlink()
    elif problem == 'bad_id':
        save_nii(src / 'labels' / 'liver_002.nii.gz', np.full(XYZ, 5, np.uint8))
    elif problem == 'shape':
        save_nii(src / 'labels' / 'liver_002.nii.gz', np.zeros((10, 8, 4), np.uint8))
    elif problem == 'unknown_test':
        test_cases = ['liver_042']
    elif problem == 'all_test':
        test_cases = ['liver_001', 'liver_002', 'liver_003']
    elif problem == 'window_hu':
        kwargs.update(intensity='hu', window=(0, 100))
    with pytest.raises(conv.NiftiFolderConversionError, match=message):
        conv.convert_nifti_folder(str(src), str(tmp_path / 'data'), test_cases, **kwargs)
    assert not (tmp_path / 'data').exists()
    assert [p.name for p in tmp_path.iterdir()] == ['src']  # no staging folder left


@pytest.mark.slow
def test_command_line(tmp_path):
    write_tree(tmp_path / 'src')
    tool = REPO / 'tools' / 'dataset_converters' / 'nifti_folder.py'
    (tmp_path / 'test.txt').write_text('# held out\nliver_002\n')
    proc = subprocess.run([sys.executable, str(tool), str(tmp_path / 'src'), str(tmp_path / 'a'),
                           '--test-list', str(tmp_path / 'test.txt'), '--classes', 'background',
                           'liver', 'tumour', '--train-volumes'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'wrote' in proc.stdout and (tmp_path / 'a' / 'train_volumes').is_dir()
    proc = subprocess.run([sys.executable, str(tool), str(tmp_path / 'nowhere'),
                           str(tmp_path / 'b'), '--test-cases', 'x'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith('error: source folder')


def _mismatch_error(conv, tmp_path, label, affine):
    """The message of converting a tree whose liver_002 label is replaced by ``label``."""
    src = tmp_path / 'src'
    write_tree(src)
    nib.save(nib.Nifti1Image(label, affine), str(src / 'labels' / 'liver_002.nii.gz'))
    with pytest.raises(conv.NiftiFolderConversionError) as info:
        conv.convert_nifti_folder(str(src), str(tmp_path / 'data'), ['liver_003'],
                                  classes=['background', 'liver', 'tumour'])
    return str(info.value), src


@pytest.mark.parametrize('problem, expected', [
    ('shape', r'has shape \(10, 6, 3\) but its image .* has \(10, 8, 3\)'),
    ('flipped_x', r'axis directions \(x flipped\)'),
    ('voxel_size', r'voxel size \(x, y, z\) \(0\.8, 0\.7, 2\.5\) mm vs \(1, 1, 1\) mm'),
])
def test_pair_mismatch_says_what_differs_and_what_to_do(conv, tmp_path, problem, expected):
    """Own files: both files named, the differing part named, resampling advised; no
    're-extract the release' (there is no release)."""
    affine = np.diag([*ZOOMS, 1.0])
    label = np.zeros(XYZ, np.uint8)
    if problem == 'shape':
        label = np.zeros((10, 6, 3), np.uint8)
    elif problem == 'flipped_x':
        affine[0, 0] = -affine[0, 0]
    else:
        affine = np.diag([1.0, 1.0, 1.0, 1.0])
    message, src = _mismatch_error(conv, tmp_path, label, affine)
    assert re.search(expected, message), message
    assert str(src / 'labels' / 'liver_002.nii.gz') in message
    assert str(src / 'images' / 'liver_002.nii.gz') in message
    assert 'belongs to this image' in message
    assert "resample it onto the image's grid with nearest-neighbour interpolation" in message
    assert 're-extract' not in message and 'release' not in message


def test_release_converters_keep_their_advice():
    """The official-release converters' messages still say to re-extract the release."""
    from mmsam.datasets.converters.pair_mismatch import affine_mismatch_message, shape_mismatch_message
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    text = affine_mismatch_message('img.nii.gz', 'lbl.nii.gz', np.eye(4), shifted, False)
    assert text.endswith("the label is not on the image's grid: re-extract the release")
    text = shape_mismatch_message('img.nii.gz', 'lbl.nii.gz', (4, 4, 2), (4, 3, 2), False)
    assert text.endswith('the pair does not match: re-extract the release')
    own = affine_mismatch_message('img.nii.gz', 'lbl.nii.gz', np.eye(4), shifted, True)
    assert 'origin (0, 0, 0) mm vs (5, 0, 0) mm' in own

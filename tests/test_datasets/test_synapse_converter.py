"""tools/dataset_converters/synapse.py and SynapseDataset, on tiny sources in both layouts.

Expected values are stated here by hand (label map, HU window, TransUNet split), not taken from
the module under test.
"""
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
from conftest import load_script, nnunet_fingerprint_stats

from mmsam.datasets import SynapseDataset

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'tools' / 'dataset_converters' / 'synapse.py'

# raw BTCV id -> Synapse id, from the Synapse/TransUNet protocol
HAND_MAP = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 0, 6: 5, 7: 6, 8: 7, 9: 0, 10: 0, 11: 8, 12: 0,
            13: 0}
HAND_CLASSES = ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder', 'liver',
                'stomach', 'aorta', 'pancreas')
SHAPE_IJK = (16, 14, 6)  # stored NIfTI array (i, j, k): converted volumes are (6, 14, 16)
ZOOMS = (0.7, 0.8, 3.0)


@pytest.fixture(scope='module')
def conv():
    return importlib.import_module('mmsam.datasets.converters.synapse')


def _pipeline():
    return [dict(type='LoadNpzSlice'),
            dict(type='PackSegInputs', meta_keys=('img_path', 'case_id', 'slice_index',
                                                  'num_slices', 'spacing'))]


def write_btcv(root, numbers=(1, 5, 6), seed=0):
    """Raw BTCV layout; returns {case: (hu (I, J, K), raw label (I, J, K))}."""
    rng = np.random.default_rng(seed)
    (root / 'img').mkdir(parents=True)
    (root / 'label').mkdir()
    cases = {}
    for n in numbers:
        hu = rng.uniform(-1100, 1500, SHAPE_IJK).astype(np.float32)
        raw = rng.integers(0, 14, SHAPE_IJK).astype(np.float32)
        # hand-checked positions in slice k=0: raw ids 0..13 along i at j=0, HU along i at j=1
        raw[:14, 0, 0] = np.arange(14)
        hu[:7, 1, 0] = [-1000, -125, -25, 75, 175, 275, 1000]
        affine = np.diag([*ZOOMS, 1.0])
        nib.save(nib.Nifti1Image(hu, affine), str(root / 'img' / f'img{n:04d}.nii.gz'))
        nib.save(nib.Nifti1Image(raw, affine), str(root / 'label' / f'label{n:04d}.nii.gz'))
        cases[f'case{n:04d}'] = (hu, raw)
    return cases


def write_transunet(root, train=('case0005', 'case0006'), test=('case0001', ), depth=6,
                    lists=False, seed=0):
    """TransUNet release layout; returns {slice or case name: (image, label)}."""
    rng = np.random.default_rng(seed)
    (root / 'train_npz').mkdir(parents=True)
    (root / 'test_vol_h5').mkdir()
    arrays = {}
    for case in train:
        for k in range(depth):
            name = f'{case}_slice{k:03d}'
            image, label = rng.random((16, 16)), rng.integers(0, 9, (16, 16)).astype(np.float32)
            np.savez(root / 'train_npz' / f'{name}.npz', image=image, label=label)
            arrays[name] = (image, label)
    for case in test:
        image = rng.random((depth, 16, 16)).astype(np.float32)
        label = rng.integers(0, 9, (depth, 16, 16)).astype(np.float32)
        with h5py.File(root / 'test_vol_h5' / f'{case}.npy.h5', 'w') as f:
            f['image'], f['label'] = image, label
        arrays[case] = (image, label)
    if lists:
        (root / 'lists' / 'lists_Synapse').mkdir(parents=True)
        (root / 'lists' / 'lists_Synapse' / 'train.txt').write_text(
            ''.join(f'{n}\n' for n in arrays if '_slice' in n))
        (root / 'lists' / 'lists_Synapse' / 'test_vol.txt').write_text(
            ''.join(f'{c}\n' for c in test))
    return arrays


def _convert(conv, src, dst, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return conv.convert_synapse(str(src), str(dst), **kwargs)


def _split(root, name):
    return (Path(root) / 'splits' / f'{name}.txt').read_text().split()


def _no_output(dst):
    leftovers = [p.name for p in dst.parent.iterdir() if p.name.startswith(f'.{dst.name}.')]
    return not dst.exists() and not leftovers


@pytest.fixture(scope='module')
def btcv(tmp_path_factory, conv):
    """A raw BTCV source with cases 1 (test), 5 and 6 (train), converted once."""
    tmp = tmp_path_factory.mktemp('btcv')
    cases = write_btcv(tmp / 'src')
    with pytest.warns(UserWarning, match='lacks 27 of the 30 cases') as record:
        meta = conv.convert_synapse(str(tmp / 'src'), str(tmp / 'out'), fmt='btcv')
    return dict(src=tmp / 'src', out=tmp / 'out', cases=cases, meta=meta,
                warning=str(record[0].message))


def test_btcv_labels_mapped_to_the_eight_organs(btcv):
    vol = np.load(btcv['out'] / 'test_volumes' / 'case0001.npz')
    hu, raw = btcv['cases']['case0001']
    assert vol['label'].dtype == np.uint8 and vol['label'].shape == (6, 14, 16)
    # raw[i, 0, 0] = i lands at [0, 0, i] (axial slices first, (k, j, i))
    np.testing.assert_array_equal(vol['label'][0, 0, :14], [HAND_MAP[i] for i in range(14)])
    expected = np.vectorize(HAND_MAP.get)(raw.astype(int)).transpose(2, 1, 0)
    np.testing.assert_array_equal(vol['label'], expected)
    # training slices: slice k of case0005 is raw[:, :, k].T
    hu5, raw5 = btcv['cases']['case0005']
    for k in (0, 5):
        item = np.load(btcv['out'] / 'train_slices' / f'case0005_slice{k:03d}.npz')
        np.testing.assert_array_equal(item['label'],
                                      np.vectorize(HAND_MAP.get)(raw5[:, :, k].astype(int)).T)
        np.testing.assert_allclose(item['image'], np.clip((hu5[:, :, k].T + 125) / 400, 0, 1),
                                   atol=1e-6)


def test_btcv_hu_window_and_spacing(btcv):
    vol = np.load(btcv['out'] / 'test_volumes' / 'case0001.npz')
    # -1000, -125, -25, 75, 175, 275, 1000 HU in the window [-125, 275]
    np.testing.assert_allclose(vol['image'][0, 1, :7], [0, 0, 0.25, 0.5, 0.75, 1, 1], atol=1e-6)
    assert vol['image'].dtype == np.float32
    assert vol['image'].min() >= 0 and vol['image'].max() <= 1
    np.testing.assert_allclose(vol['spacing'], (3.0, 0.8, 0.7), rtol=1e-6)
    assert btcv['meta']['source_axcodes'] == {'case0001': 'RAS', 'case0005': 'RAS',
                                              'case0006': 'RAS'}


def test_split_follows_transunet_and_warns_about_missing_cases(btcv):
    out = btcv['out']
    assert _split(out, 'test') == ['case0001']
    assert _split(out, 'train') == [f'case{c:04d}_slice{k:03d}' for c in (5, 6)
                                    for k in range(6)]
    assert sorted(p.stem for p in (out / 'train_slices').iterdir()) == _split(out, 'train')
    assert [p.name for p in (out / 'test_volumes').iterdir()] == ['case0001.npz']
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['classes'] == list(HAND_CLASSES)
    assert (meta['train_cases'], meta['test_cases']) == (['case0005', 'case0006'], ['case0001'])
    assert len(meta['missing_cases']) == 27
    # the warning names missing cases by role
    assert 'case0007' in btcv['warning'] and 'case0038' in btcv['warning']
    assert 'case0005' not in btcv['warning']


def test_few_shot_sample_is_stratified_and_seeded(conv):
    counts = [123] * 17 + [2211 - 123 * 17]  # 2211 training slices, as in TransUNet's release
    slices = {f'case{c:04d}': [f'case{c:04d}_slice{k:03d}' for k in range(n)]
              for c, n in zip((5, 6, 7, 9, 10, 21, 23, 24, 26, 27, 28, 30, 31, 33, 34, 37, 39, 40),
                              counts)}
    first = conv.sample_few_shot(slices, 0.1, seed=0)
    assert len(first) == 221 == len(set(first))  # H-SAM: 221 slices
    per_case = {c: sum(n.startswith(c) for n in first) for c in slices}
    assert set(per_case.values()) <= {12, 13}  # 123 * 221 / 2211 = 12.3
    assert conv.sample_few_shot(slices, 0.1, seed=0) == first
    assert conv.sample_few_shot(slices, 0.1, seed=1) != first
    # a case's draw depends on the seed and its share only, not on the other cases
    two = {c: slices[c] for c in ('case0005', 'case0006')}
    picked = conv.sample_few_shot(two, 0.1, seed=0)  # 246 slices -> 25: 13 + 12
    assert [n for n in picked if n.startswith('case0005')] == \
        [n for n in first if n.startswith('case0005')]
    assert conv.few_shot_split_name(0.1) == 'train_10pct'
    assert conv.few_shot_split_name(0.05) == 'train_5pct'
    with pytest.raises(conv.SynapseConversionError, match='fraction'):
        conv.sample_few_shot(slices, 1.5)


def test_few_shot_split_written_by_seed(tmp_path, conv, btcv):
    few = _split(btcv['out'], 'train_10pct')
    assert len(few) == 1 and few[0] in _split(btcv['out'], 'train')  # round(0.1 * 12)
    src = tmp_path / 'src'
    write_transunet(src, train=('case0005', 'case0006', 'case0007'), depth=20)
    runs = {}
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        meta = _convert(conv, src, tmp_path / name, fmt='transunet', seed=seed,
                        few_shot_fraction=0.25)
        runs[name] = _split(tmp_path / name, 'train_25pct')
    assert meta['few_shot'] == dict(split='train_25pct', num_slices=15, fraction=0.25, seed=1,
                                    source='random slices stratified by case')
    assert runs['a'] == runs['b'] != runs['c']
    assert len(runs['a']) == 15 and len(set(runs['a'])) == 15
    assert all(sum(n.startswith(c) for n in runs['a']) == 5
               for c in ('case0005', 'case0006', 'case0007'))


def test_user_few_shot_list(tmp_path, conv):
    src = tmp_path / 'src'
    write_transunet(src)
    good = tmp_path / 'good.txt'
    good.write_text('# published list\ncase0006_slice002\n\ntrain_npz/case0005_slice004.npz\n')
    meta = _convert(conv, src, tmp_path / 'out', few_shot_list=str(good))
    assert _split(tmp_path / 'out', 'train_10pct') == ['case0006_slice002', 'case0005_slice004']
    assert meta['few_shot']['num_slices'] == 2 and 'good.txt' in meta['few_shot']['source']

    bad = tmp_path / 'bad.txt'
    bad.write_text('case0005_slice000\ncase0005_slice099\ncase0001_slice000\n')
    with pytest.raises(conv.SynapseConversionError,
                       match=r'bad\.txt names 2 slice\(s\).*case0005_slice099, case0001_slice000'):
        _convert(conv, src, tmp_path / 'out2', few_shot_list=str(bad))
    assert _no_output(tmp_path / 'out2')


def test_transunet_release_copied_exactly(tmp_path, conv):
    src = tmp_path / 'src'
    arrays = write_transunet(src, lists=True)
    (src / 'train_npz' / 'case0006_slice006.npz').write_bytes(b'not listed, so never read')
    with pytest.warns(UserWarning, match=r'1 file\(s\).*not in .*train\.txt.*case0006_slice006'):
        meta = conv.convert_synapse(str(src), str(tmp_path / 'out'))  # format detected
    out = tmp_path / 'out'
    assert meta['source']['format'] == 'transunet' and meta['spacing_known'] is False
    assert _split(out, 'test') == ['case0001']
    assert len(_split(out, 'train')) == 12
    item = np.load(out / 'train_slices' / 'case0006_slice003.npz')
    image, label = arrays['case0006_slice003']
    np.testing.assert_allclose(item['image'], image, rtol=1e-6)
    np.testing.assert_array_equal(item['label'], label)
    vol = np.load(out / 'test_volumes' / 'case0001.npz')
    np.testing.assert_array_equal(vol['image'], arrays['case0001'][0])
    np.testing.assert_array_equal(vol['label'], arrays['case0001'][1])
    np.testing.assert_array_equal(vol['spacing'], (1, 1, 1))


def test_synapse_dataset_loads_converted_data(btcv):
    out = str(btcv['out'])
    train = SynapseDataset(data_root=out, split='train_10pct', pipeline=_pipeline())
    assert train.metainfo['classes'] == HAND_CLASSES and len(train.metainfo['palette']) == 9
    item = train[0]
    stored = np.load(f'{out}/train_slices/{_split(out, "train_10pct")[0]}.npz')
    assert item['inputs'].shape == (3, 14, 16)
    np.testing.assert_allclose(item['inputs'][1].numpy(), stored['image'] * 255, rtol=1e-5)
    np.testing.assert_array_equal(item['data_samples'].gt_sem_seg.data[0].numpy(),
                                  stored['label'])
    test = SynapseDataset(data_root=out, split='test', test_mode=True, pipeline=_pipeline())
    assert len(test) == 6
    sample = test[5]['data_samples']
    assert (sample.case_id, sample.slice_index, sample.num_slices) == ('case0001', 5, 6)
    np.testing.assert_allclose(sample.spacing, (3.0, 0.8, 0.7), rtol=1e-6)
    expected = np.vectorize(HAND_MAP.get)(btcv['cases']['case0001'][1][:, :, 5].astype(int)).T
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected)


def test_synapse_dataset_rejects_other_data(tmp_path):
    (tmp_path / 'meta.json').write_text(json.dumps(dict(classes=['background', 'tumour'])))
    with pytest.raises(ValueError, match=r'meta\.json lists classes .* not the Synapse classes'):
        SynapseDataset(data_root=str(tmp_path), split='train', pipeline=[])


def test_corrupt_btcv_file_named_and_nothing_left(tmp_path, conv):
    src = tmp_path / 'src'
    write_btcv(src)
    # case0006 is converted after case0005, so partial output exists when it fails
    path = src / 'img' / 'img0006.nii.gz'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(conv.SynapseConversionError, match=r'img0006\.nii\.gz.*re-download'):
        _convert(conv, src, tmp_path / 'out', fmt='btcv')
    assert _no_output(tmp_path / 'out')
    (src / 'label' / 'label0005.nii.gz').unlink()
    with pytest.raises(conv.SynapseConversionError, match=r'label0005\.nii\.gz .*does not exist'):
        _convert(conv, src, tmp_path / 'out', fmt='btcv')


def test_corrupt_or_incomplete_transunet_files_named(tmp_path, conv):
    src = tmp_path / 'src'
    write_transunet(src)
    (src / 'train_npz' / 'case0006_slice001.npz').write_bytes(b'garbage')
    with pytest.raises(conv.SynapseConversionError, match=r'case0006_slice001\.npz'):
        _convert(conv, src, tmp_path / 'out')
    assert _no_output(tmp_path / 'out')

    src2 = tmp_path / 'src2'
    write_transunet(src2)
    with h5py.File(src2 / 'test_vol_h5' / 'case0001.npy.h5', 'r+') as f:
        del f['label']
    with pytest.raises(conv.SynapseConversionError,
                       match=r"case0001\.npy\.h5 lacks dataset\(s\) \['label'\]"):
        _convert(conv, src2, tmp_path / 'out')
    assert _no_output(tmp_path / 'out')

    with pytest.raises(conv.SynapseConversionError, match=r'lists_Synapse/train\.txt lists 1'):
        src3 = tmp_path / 'src3'
        write_transunet(src3, lists=True)
        (src3 / 'train_npz' / 'case0005_slice002.npz').unlink()
        _convert(conv, src3, tmp_path / 'out')


def test_split_violations_and_destination_checks(tmp_path, conv):
    leak = tmp_path / 'leak'
    write_transunet(leak, train=('case0005', 'case0002'))
    with pytest.raises(conv.SynapseConversionError, match=r"test case\(s\) \['case0002'\]"):
        _convert(conv, leak, tmp_path / 'out')
    src = tmp_path / 'src'
    write_transunet(src)
    (tmp_path / 'busy').mkdir()
    (tmp_path / 'busy' / 'notes.txt').write_text('mine')
    with pytest.raises(conv.SynapseConversionError, match='not empty'):
        _convert(conv, src, tmp_path / 'busy')
    with pytest.raises(conv.SynapseConversionError, match='not an output of this converter'):
        _convert(conv, src, tmp_path / 'busy', overwrite=True)
    assert (tmp_path / 'busy' / 'notes.txt').read_text() == 'mine'
    _convert(conv, src, tmp_path / 'out')
    _convert(conv, src, tmp_path / 'out', overwrite=True, seed=5)
    assert json.loads((tmp_path / 'out' / 'meta.json').read_text())['few_shot']['seed'] == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []


def test_cli(tmp_path, conv, capsys):
    src = tmp_path / 'src'
    write_btcv(src, numbers=(2, 7))
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(src), str(tmp_path / 'out'), '--format', 'btcv',
         '--few-shot-fraction', '0.5', '--seed', '3'],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'warning: Synapse source' in run.stderr and 'case0001' in run.stderr
    assert _split(tmp_path / 'out', 'test') == ['case0002']
    assert len(_split(tmp_path / 'out', 'train_50pct')) == 3
    assert _split(tmp_path / 'out', 'train_50pct') == conv.sample_few_shot(
        {'case0007': [f'case0007_slice{k:03d}' for k in range(6)]}, 0.5, seed=3)

    bad = tmp_path / 'bad.txt'
    bad.write_text('case0007_slice042\n')
    status = load_script('tools/dataset_converters/synapse.py').main([str(src), str(tmp_path / 'out2'), '--few-shot-list', str(bad)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith('error: ')]
    assert status == 1 and len(errors) == 1 and 'case0007_slice042' in errors[0]
    assert _no_output(tmp_path / 'out2')


# ---------------------------------------------------------------------------------------------
# volumetric options: --train-volumes, --intensity hu, --target-spacing


def _mapped(raw):
    return np.vectorize(HAND_MAP.get)(raw.astype(int)).transpose(2, 1, 0)


def test_btcv_default_has_no_volumetric_extras(btcv):
    meta = btcv['meta']
    assert (meta['intensity'], meta['ct_foreground'], meta['target_spacing']) == ('unit', None,
                                                                                  None)
    assert not (btcv['out'] / 'train_volumes').exists()
    assert 'native_label' not in np.load(btcv['out'] / 'test_volumes' / 'case0001.npz').files


def test_btcv_train_volumes_in_hu_with_foreground_stats(tmp_path, conv):
    cases = write_btcv(tmp_path / 'src')
    status = load_script('tools/dataset_converters/synapse.py').main([str(tmp_path / 'src'), str(tmp_path / 'out'), '--format', 'btcv',
                        '--train-volumes', '--intensity', 'hu'])
    assert status == 0
    out = tmp_path / 'out'
    assert _split(out, 'train_volumes') == ['case0005', 'case0006']
    hu5, raw5 = cases['case0005']
    vol = np.load(out / 'train_volumes' / 'case0005.npz')
    np.testing.assert_array_equal(vol['image'], hu5.transpose(2, 1, 0))  # raw HU, float32
    np.testing.assert_array_equal(vol['label'], _mapped(raw5))
    np.testing.assert_allclose(vol['spacing'], (3.0, 0.8, 0.7), rtol=1e-6)
    item = np.load(out / 'train_slices' / 'case0005_slice004.npz')
    np.testing.assert_array_equal(item['image'], vol['image'][4])
    test = np.load(out / 'test_volumes' / 'case0001.npz')
    np.testing.assert_array_equal(test['image'], cases['case0001'][0].transpose(2, 1, 0))
    # nnU-Net's CT statistics over the labelled voxels of the training cases only (its
    # fingerprint: each case weighs the same)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['intensity'] == 'hu' and meta['target_spacing'] is None
    assert meta['ct_foreground'] == nnunet_fingerprint_stats(
        [(cases[c][0].transpose(2, 1, 0), _mapped(cases[c][1])) for c in ('case0005', 'case0006')])


def test_btcv_resampled_keeps_native_grid(tmp_path, conv):
    cases = write_btcv(tmp_path / 'src')
    meta = _convert(conv, tmp_path / 'src', tmp_path / 'out', fmt='btcv',
                    target_spacing='1.5,0.8,0.7', train_volumes=True)
    out = tmp_path / 'out'
    assert meta['target_spacing'] == [1.5, 0.8, 0.7]
    # 3 mm -> 1.5 mm: 12 slices a case, planned from the headers
    assert _split(out, 'train') == [f'case{c:04d}_slice{k:03d}' for c in (5, 6)
                                    for k in range(12)]
    vol = np.load(out / 'test_volumes' / 'case0001.npz')
    hu, raw = cases['case0001']
    native = _mapped(raw)
    np.testing.assert_array_equal(vol['native_label'], native)
    np.testing.assert_array_equal(vol['native_shape'], (6, 14, 16))
    np.testing.assert_allclose(vol['native_spacing'], (3.0, 0.8, 0.7), rtol=1e-6)
    np.testing.assert_allclose(vol['spacing'], (1.5, 0.8, 0.7))
    # anisotropic source (3 / 0.7 > 3): nearest along z, then TransUNet's window
    np.testing.assert_array_equal(vol['label'], native.repeat(2, axis=0))
    window = np.clip((hu.transpose(2, 1, 0) + 125) / 400, 0, 1)
    np.testing.assert_allclose(vol['image'], window.repeat(2, axis=0), atol=1e-6)
    train = np.load(out / 'train_volumes' / 'case0005.npz')
    assert train['label'].shape == (12, 14, 16) and 'native_label' not in train.files
    # auto: the median (3, 0.8, 0.7); 6 slices * 3 >= 14, so z keeps the median
    meta = _convert(conv, tmp_path / 'src', tmp_path / 'auto', fmt='btcv', target_spacing='auto')
    assert meta['target_spacing'] == pytest.approx([3.0, 0.8, 0.7])
    assert len(_split(tmp_path / 'auto', 'train')) == 12


def test_btcv_hu_resampled_is_clipped_to_native_statistics_first(tmp_path, conv, monkeypatch):
    # nnU-Net's order: statistics of the native training cases (a pass of their own), then
    # every case clipped to their [0.5, 99.5] percentiles before it is resampled (still HU)
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import \
        DatasetFingerprintExtractor

    from mmsam.datasets.converters import case_volumes
    from mmsam.datasets.converters.nnunet_preprocessing import ct_clip_range, resample_volume
    per_case = 3000  # nnU-Net's 10e7 // N draws, made small for speed
    monkeypatch.setattr(case_volumes, 'FOREGROUND_SAMPLE_BUDGET', 2 * per_case)
    cases = write_btcv(tmp_path / 'src')
    meta = _convert(conv, tmp_path / 'src', tmp_path / 'out', fmt='btcv', intensity='hu',
                    target_spacing='1.5,0.6,0.7', train_volumes=True)
    draws = np.concatenate([DatasetFingerprintExtractor.collect_foreground_intensities(
        _mapped(cases[c][1])[None], cases[c][0].transpose(2, 1, 0)[None],
        num_samples=per_case)[0][0] for c in ('case0005', 'case0006')])
    assert meta['ct_foreground'] == dict(
        mean=float(np.mean(draws)), std=float(np.std(draws)),
        percentile_00_5=float(np.percentile(draws, 0.5)),
        percentile_99_5=float(np.percentile(draws, 99.5)))
    low, high = ct_clip_range(meta['ct_foreground'])
    for case, folder in (('case0005', 'train_volumes'), ('case0001', 'test_volumes')):
        hu, raw = cases[case]
        vol = np.load(tmp_path / 'out' / folder / f'{case}.npz')
        expected = resample_volume(hu.transpose(2, 1, 0), _mapped(raw), (3.0, 0.8, 0.7),
                                   (1.5, 0.6, 0.7), (low, high))
        np.testing.assert_array_equal(vol['image'], expected[0])
        np.testing.assert_array_equal(vol['label'], expected[1])
        assert low <= vol['image'].min() and vol['image'].max() <= high < hu.max()
    item = np.load(tmp_path / 'out' / 'train_slices' / 'case0005_slice003.npz')
    np.testing.assert_array_equal(item['image'], np.load(
        tmp_path / 'out' / 'train_volumes' / 'case0005.npz')['image'][3])


def test_transunet_release_refuses_hu_and_resampling(tmp_path, conv):
    src = tmp_path / 'src'
    arrays = write_transunet(src)
    with pytest.raises(conv.SynapseConversionError, match=r'already windowed.*--format btcv'):
        _convert(conv, src, tmp_path / 'out', intensity='hu')
    with pytest.raises(conv.SynapseConversionError,
                       match=r'stores no voxel spacing .*cannot be resampled'):
        _convert(conv, src, tmp_path / 'out', target_spacing='auto')
    assert _no_output(tmp_path / 'out')
    _convert(conv, src, tmp_path / 'out', train_volumes=True)
    vol = np.load(tmp_path / 'out' / 'train_volumes' / 'case0006.npz')
    np.testing.assert_allclose(vol['image'], np.stack([arrays[f'case0006_slice{k:03d}'][0]
                                                       for k in range(6)]), rtol=1e-6)
    np.testing.assert_array_equal(vol['spacing'], (1, 1, 1))
    assert _split(tmp_path / 'out', 'train_volumes') == ['case0005', 'case0006']


def test_btcv_unknown_label_id_and_affine_mismatch_named(tmp_path, conv):
    src = tmp_path / 'src'
    cases = write_btcv(src)
    raw = cases['case0006'][1].copy()
    raw[0, 0, 0] = 14
    nib.save(nib.Nifti1Image(raw, np.diag([*ZOOMS, 1.0])), str(src / 'label' / 'label0006.nii.gz'))
    with pytest.raises(conv.SynapseConversionError,
                       match=r'label0006\.nii\.gz: unknown label id\(s\) \[14\].*allowed are 0-13'):
        _convert(conv, src, tmp_path / 'out', fmt='btcv')
    assert _no_output(tmp_path / 'out')
    nib.save(nib.Nifti1Image(cases['case0006'][1], np.diag([0.7, 0.8, 2.0, 1.0])),
             str(src / 'label' / 'label0006.nii.gz'))
    with pytest.raises(conv.SynapseConversionError,
                       match=r'label0006\.nii\.gz has affine .*img0006\.nii\.gz'):
        _convert(conv, src, tmp_path / 'out', fmt='btcv')
    assert _no_output(tmp_path / 'out')

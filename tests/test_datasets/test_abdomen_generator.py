"""SyntheticAbdomen: the seeded CT-like generator and its safe on-disk writer."""
import os
import os.path as osp
import zipfile

import numpy as np
import pytest

from mmsam.datasets.io import data_root, npz
from mmsam.datasets.synthetic import (CLASSES, PALETTE, abdomen_generator,
                                      ensure_synthetic_abdomen, generate_case,
                                      generate_synthetic_abdomen)

SMALL = dict(num_train_cases=2, num_test_cases=1, size=64, depth=12)
ORGANS = CLASSES[1:]


def cls(name):
    return CLASSES.index(name)


@pytest.fixture(scope='module')
def cases():
    return [generate_case(np.random.default_rng(seed), size=64, depth=12) for seed in range(4)]


def test_classes_and_palette():
    assert CLASSES == ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder',
                       'liver', 'stomach', 'aorta', 'pancreas')
    assert len(PALETTE) == len(CLASSES)
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in PALETTE)
    assert len({tuple(c) for c in PALETTE}) == len(PALETTE)


def test_case_types_ranges_and_all_classes(cases):
    for image, label in cases:
        assert image.shape == label.shape == (12, 64, 64)
        assert image.dtype == np.float32 and label.dtype == np.uint8
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert image.std() > 0.1  # not a blank or constant image
        assert label.max() < len(CLASSES)
        present = set(np.unique(label).tolist())
        assert present == set(range(len(CLASSES))), f'missing {set(range(9)) - present}'


def test_determinism_by_seed():
    a = generate_case(np.random.default_rng(7), size=64, depth=12)
    b = generate_case(np.random.default_rng(7), size=64, depth=12)
    c = generate_case(np.random.default_rng(8), size=64, depth=12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])


def test_small_organs_are_smaller_than_liver_and_cover_part_of_the_slices(cases):
    for _, label in cases:
        counts = np.bincount(label.ravel(), minlength=len(CLASSES))
        for name in ('gallbladder', 'pancreas', 'aorta'):
            assert counts[cls(name)] < 0.3 * counts[cls('liver')], name
        for name in ('gallbladder', 'pancreas', 'right_kidney', 'left_kidney', 'spleen'):
            slices = (label == cls(name)).any(axis=(1, 2))
            assert 0 < slices.sum() < label.shape[0], name
        assert (label > 0).mean() < 0.2  # mostly background, as in abdominal CT


def test_anatomical_layout(cases):
    """Radiological convention: image left = patient right, top = anterior, slice 0 superior."""
    for _, label in cases:
        centre = {name: np.argwhere(label == cls(name)).mean(0) for name in ORGANS}  # (z, y, x)
        assert centre['liver'][2] < 32 < centre['spleen'][2]
        assert centre['right_kidney'][2] < 32 < centre['left_kidney'][2]
        for kidney in ('right_kidney', 'left_kidney'):
            assert centre[kidney][1] > centre['aorta'][1]  # kidneys posterior to the aorta
            assert centre[kidney][0] > centre['liver'][0]  # and below the liver's centre
        assert centre['pancreas'][1] < centre['aorta'][1]  # pancreas in front of the aorta
        # the aorta is a tube along z: present in most slices, small in each
        aorta = label == cls('aorta')
        assert aorta.any(axis=(1, 2)).mean() > 0.7


def test_generate_writes_documented_format(tmp_path):
    root = str(tmp_path / 'abd')
    meta = generate_synthetic_abdomen(root, seed=3, **SMALL)
    train = data_root.read_split(root, 'train')
    test = data_root.read_split(root, 'test')
    assert len(train) == 2 * 12 and train[0] == 'case0000_slice000'
    assert test == ['case0002']
    assert data_root.read_meta(root) == meta
    assert meta['classes'] == list(CLASSES) and meta['palette'] == PALETTE
    assert meta['generator']['params'] == dict(seed=3, **SMALL)
    sl = npz.load_npz(osp.join(root, data_root.TRAIN_SLICE_DIR, f'{train[5]}.npz'))
    assert sl['image'].shape == sl['label'].shape == (64, 64)
    vol = npz.load_npz(osp.join(root, data_root.TEST_VOLUME_DIR, 'case0002.npz'),
                             keys=('image', 'label', 'spacing'))
    assert vol['image'].shape == (12, 64, 64)
    assert set(np.unique(vol['label']).tolist()) == set(range(len(CLASSES)))
    np.testing.assert_allclose(vol['spacing'], abdomen_generator.case_spacing(64, 12))
    # the slices of a training case stack back into a complete labelled volume
    labels = np.stack([npz.load_npz(osp.join(
        root, data_root.TRAIN_SLICE_DIR, f'case0001_slice{k:03d}.npz'))['label']
        for k in range(12)])
    assert set(np.unique(labels).tolist()) == set(range(len(CLASSES)))


def _mtimes(root):
    return {osp.join(d, f): os.stat(osp.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files}


def test_ensure_does_not_regenerate_when_parameters_match(tmp_path, monkeypatch):
    root = str(tmp_path / 'abd')
    ensure_synthetic_abdomen(root, seed=1, **SMALL)
    before = _mtimes(root)

    def fail(*args, **kwargs):
        raise AssertionError('regenerated although the parameters match')

    monkeypatch.setattr(abdomen_generator, 'generate_synthetic_abdomen', fail)
    meta = ensure_synthetic_abdomen(root, seed=1, **SMALL)
    assert meta['generator']['params'] == dict(seed=1, **SMALL)
    assert _mtimes(root) == before


def test_ensure_regenerates_when_parameters_change(tmp_path):
    root = str(tmp_path / 'abd')
    ensure_synthetic_abdomen(root, seed=1, **SMALL)
    old = npz.load_npz(osp.join(root, data_root.TEST_VOLUME_DIR, 'case0002.npz'))
    ensure_synthetic_abdomen(root, seed=2, **SMALL)
    assert data_root.read_meta(root)['generator']['params']['seed'] == 2
    new = npz.load_npz(osp.join(root, data_root.TEST_VOLUME_DIR, 'case0002.npz'))
    assert not np.array_equal(old['image'], new['image'])
    # fewer cases: the fresh data root holds no stale files from the previous one
    ensure_synthetic_abdomen(root, seed=2, **dict(SMALL, num_train_cases=1))
    stems = {f[:-4] for f in os.listdir(osp.join(root, data_root.TRAIN_SLICE_DIR))}
    assert stems == set(data_root.read_split(root, 'train')) and len(stems) == 12
    assert data_root.read_split(root, 'test') == ['case0001']
    assert not [e for e in os.listdir(tmp_path) if e.startswith('.abd.tmp-')]


def _interrupt(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError('simulated crash')

    monkeypatch.setattr(abdomen_generator, 'save_volume', boom)


def test_interrupted_generation_leaves_no_data_root(tmp_path, monkeypatch):
    root = str(tmp_path / 'abd')
    _interrupt(monkeypatch)
    with pytest.raises(RuntimeError, match='simulated crash'):
        ensure_synthetic_abdomen(root, seed=1, **SMALL)
    assert not osp.exists(root)
    assert not [e for e in os.listdir(tmp_path) if '.tmp-' in e or '.old-' in e]
    monkeypatch.undo()
    ensure_synthetic_abdomen(root, seed=1, **SMALL)  # and the next call succeeds
    assert osp.isfile(osp.join(root, data_root.META_FILE))


def test_interrupted_regeneration_keeps_previous_data_root(tmp_path, monkeypatch):
    root = str(tmp_path / 'abd')
    ensure_synthetic_abdomen(root, seed=1, **SMALL)
    before = _mtimes(root)
    _interrupt(monkeypatch)
    with pytest.raises(RuntimeError, match='simulated crash'):
        ensure_synthetic_abdomen(root, seed=2, **SMALL)
    assert _mtimes(root) == before
    assert data_root.read_meta(root)['generator']['params']['seed'] == 1


def test_interrupted_direct_generation_writes_no_meta(tmp_path, monkeypatch):
    root = str(tmp_path / 'abd')
    generate_synthetic_abdomen(root, seed=1, **SMALL)
    _interrupt(monkeypatch)
    with pytest.raises(RuntimeError, match='simulated crash'):
        generate_synthetic_abdomen(root, seed=2, **SMALL)
    assert not osp.exists(osp.join(root, data_root.META_FILE))  # the stale one is gone too


def test_ensure_refuses_to_replace_foreign_directory(tmp_path):
    root = tmp_path / 'real_data'
    root.mkdir()
    (root / 'precious.nii.gz').write_text('x')
    with pytest.raises(FileExistsError, match='not a SyntheticAbdomen data root'):
        ensure_synthetic_abdomen(str(root), seed=1, **SMALL)
    assert (root / 'precious.nii.gz').read_text() == 'x'


def test_bad_parameters_are_named(tmp_path):
    with pytest.raises(TypeError, match='num_cases'):
        ensure_synthetic_abdomen(str(tmp_path / 'a'), num_cases=3)
    with pytest.raises(ValueError, match='size=8'):
        ensure_synthetic_abdomen(str(tmp_path / 'a'), size=8)
    assert not osp.exists(tmp_path / 'a')


TINY = dict(num_train_cases=2, num_test_cases=1, size=32, depth=8, seed=5)


def _npz_members(path):
    """The raw .npy payloads of an .npz (the zip's timestamps aside, its exact bytes)."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_train_volumes_adds_volumes_and_changes_nothing_else(tmp_path):
    plain, vols = str(tmp_path / 'plain'), str(tmp_path / 'vols')
    meta_plain = generate_synthetic_abdomen(plain, **TINY)
    meta_vols = generate_synthetic_abdomen(vols, train_volumes=True, **TINY)
    # the default data (and its recorded parameters) are those of the generator before the flag
    assert meta_plain['generator']['params'] == TINY
    assert meta_vols['generator']['params'] == dict(TINY, train_volumes=True)
    assert not osp.exists(osp.join(plain, data_root.TRAIN_VOLUME_DIR))
    for sub in (data_root.TRAIN_SLICE_DIR, data_root.TEST_VOLUME_DIR):
        names = sorted(os.listdir(osp.join(plain, sub)))
        assert names == sorted(os.listdir(osp.join(vols, sub)))
        for name in names:
            assert _npz_members(osp.join(plain, sub, name)) == \
                _npz_members(osp.join(vols, sub, name)), name
    for split in ('train', 'test'):
        assert data_root.read_split(plain, split) == data_root.read_split(vols, split)
    extra = {k for k, v in meta_vols.items() if k not in meta_plain or meta_plain[k] != v}
    assert extra == {'generator', 'intensity', 'target_spacing', 'ct_foreground'}
    assert meta_vols['intensity'] == 'unit' and meta_vols['target_spacing'] is None
    # the training volumes are the stacked training slices
    assert data_root.read_split(vols, 'train_volumes') == ['case0000', 'case0001']
    foreground = []
    for case in ('case0000', 'case0001'):
        vol = npz.load_npz(osp.join(vols, data_root.TRAIN_VOLUME_DIR, f'{case}.npz'),
                                 keys=('image', 'label', 'spacing'))
        slices = [npz.load_npz(osp.join(plain, data_root.TRAIN_SLICE_DIR,
                                              f'{case}_slice{k:03d}.npz')) for k in range(8)]
        np.testing.assert_array_equal(vol['image'], np.stack([s['image'] for s in slices]))
        np.testing.assert_array_equal(vol['label'], np.stack([s['label'] for s in slices]))
        np.testing.assert_allclose(vol['spacing'], abdomen_generator.case_spacing(32, 8))
        foreground.append(vol['image'][vol['label'] > 0])
    values = np.concatenate(foreground).astype(np.float64)
    stats = meta_vols['ct_foreground']
    np.testing.assert_allclose([stats['mean'], stats['std'], stats['percentile_00_5'],
                                stats['percentile_99_5']],
                               [values.mean(), values.std(), np.percentile(values, 0.5),
                                np.percentile(values, 99.5)])


def test_ensure_with_train_volumes_regenerates_once_and_serves_2d_too(tmp_path, monkeypatch):
    root = str(tmp_path / 'abd')
    ensure_synthetic_abdomen(root, **TINY)
    assert not osp.exists(osp.join(root, data_root.TRAIN_VOLUME_DIR))
    meta = ensure_synthetic_abdomen(root, train_volumes=True, **TINY)  # params differ
    assert meta['generator']['params']['train_volumes'] is True
    assert osp.isdir(osp.join(root, data_root.TRAIN_VOLUME_DIR))
    before = _mtimes(root)

    def fail(*args, **kwargs):
        raise AssertionError('regenerated although the data root holds what is asked for')

    monkeypatch.setattr(abdomen_generator, 'generate_synthetic_abdomen', fail)
    ensure_synthetic_abdomen(root, train_volumes=True, **TINY)
    ensure_synthetic_abdomen(root, **TINY)  # the slice-only request is a subset of it
    ensure_synthetic_abdomen(root, train_volumes=False, **TINY)
    assert _mtimes(root) == before
    with pytest.raises(AssertionError, match='regenerated'):
        ensure_synthetic_abdomen(root, train_volumes=True, **dict(TINY, seed=6))


def test_train_volumes_must_be_a_bool(tmp_path):
    with pytest.raises(TypeError, match='train_volumes must be True or False'):
        ensure_synthetic_abdomen(str(tmp_path / 'a'), train_volumes=1)
    with pytest.raises(TypeError, match='size must be an int'):
        ensure_synthetic_abdomen(str(tmp_path / 'a'), size=True)

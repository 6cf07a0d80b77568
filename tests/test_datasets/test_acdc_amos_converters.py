"""tools/dataset_converters/{acdc,amos}.py and the volumetric helpers of mmsam.datasets.converters.

Tiny fake NIfTI trees in the real release layouts. Expected values are stated by hand (the
official split lists, nnU-Net's rules worked on small numbers, sklearn KFold's permutation for
seed 12345) or computed with plain numpy from the source arrays.
"""
import importlib
import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import load_script, nnunet_fingerprint_stats

from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters import nnunet_preprocessing as nnunet


# the official MaskSAM ACDC split, by patient number
HAND_VAL = [89, 90, 91, 93, 94, 96, 97, 98, 99, 100]
HAND_TEST = [2, 3, 8, 9, 12, 14, 17, 24, 42, 48, 49, 53, 55, 64, 67, 79, 81, 88, 92, 95]
ACDC_XYZ = (12, 10, 3)  # stored (x, y, z): converted volumes are (3, 10, 12)
AMOS_XYZ = (8, 7, 3)


def _load(name):
    return importlib.import_module(f'mmsam.datasets.converters.{name}')


def _cli(name):
    """tools/dataset_converters/<name>.py, the command line (tools/ is not a package)."""
    return load_script(f'tools/dataset_converters/{name}.py')


@pytest.fixture(scope='module')
def acdc():
    return _load('acdc')


@pytest.fixture(scope='module')
def amos():
    return _load('amos')


def save_nii(path, array, zooms, affine=None):
    affine = np.diag([*zooms, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(array, affine), str(path))


def write_acdc(root, patients=range(1, 101), z_of=lambda p: 10.0, seed=0):
    """ACDC layout, ED frame 1 and ES frame 5 + p % 7; returns {case: (image, label) (x, y, z)}."""
    rng = np.random.default_rng(seed)
    cases = {}
    for p in patients:
        folder = root / 'training' / f'patient{p:03d}'
        folder.mkdir(parents=True)
        es = 5 + p % 7
        (folder / 'Info.cfg').write_text(f'ED: 1\nES: {es}\nGroup: NOR\nNbFrame: 30\n')
        for frame in (1, es):
            name = f'patient{p:03d}_frame{frame:02d}'
            image = rng.normal(100, 20, ACDC_XYZ).astype(np.float32)
            label = rng.integers(0, 4, ACDC_XYZ).astype(np.uint8)
            save_nii(folder / f'{name}.nii.gz', image, (1.25, 1.5, z_of(p)))
            save_nii(folder / f'{name}_gt.nii.gz', label, (1.25, 1.5, z_of(p)))
            cases[name] = (image, label)
    return cases


def write_amos(root, tr=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 501, 502), va=(13, 14, 505),
               seed=0):
    """AMOS22 layout (ids > 500 are MRI); returns {case: (hu, label) (x, y, z)}."""
    rng = np.random.default_rng(seed)
    cases = {}
    for part, ids in (('Tr', tr), ('Va', va)):
        (root / f'images{part}').mkdir(parents=True)
        (root / f'labels{part}').mkdir()
        for n in ids:
            hu = rng.integers(-1000, 1500, AMOS_XYZ).astype(np.float32)
            label = rng.integers(0, 16, AMOS_XYZ).astype(np.uint8)
            zooms = (0.8, 0.7, 2.0 + n % 3)
            save_nii(root / f'images{part}' / f'amos_{n:04d}.nii.gz', hu, zooms)
            save_nii(root / f'labels{part}' / f'amos_{n:04d}.nii.gz', label, zooms)
            cases[f'amos_{n:04d}'] = (hu, label)
    names = ['background', 'spleen', 'right kidney', 'left kidney', 'gall bladder', 'esophagus',
             'liver', 'stomach', 'arota', 'postcava', 'pancreas', 'right adrenal gland',
             'left adrenal gland', 'duodenum', 'bladder', 'prostate/uterus']
    (root / 'dataset.json').write_text(json.dumps(dict(labels={str(i): n
                                                               for i, n in enumerate(names)})))
    return cases


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*args, **kwargs)


def _split(root, name):
    return (Path(root) / 'splits' / f'{name}.txt').read_text().split()


def _no_output(dst):
    leftovers = [p.name for p in dst.parent.iterdir() if p.name.startswith(f'.{dst.name}.')]
    return not dst.exists() and not leftovers


# ---------------------------------------------------------------------------------------------
# converters.nnunet_preprocessing: nnU-Net's rules


def test_target_spacing_median_and_tenth_percentile():
    z = [2.5, 5.0, 5.0, 6.0, 10.0]
    spacings = [[s, 0.8, 0.8] for s in z]
    # median z 5 > 3 * 0.8: anisotropic; 10th percentile of z: 2.5 + 0.4 * (5 - 2.5) = 3.5
    assert nnunet.nnunet_target_spacing(spacings) == pytest.approx((3.5, 0.8, 0.8))
    # with shapes: 10 * 3 < 64 keeps the rule; 30 * 3 >= 64 turns it off (median stays)
    assert nnunet.nnunet_target_spacing(spacings, [[10, 64, 64]] * 5) == pytest.approx((3.5, .8, .8))
    assert nnunet.nnunet_target_spacing(spacings, [[30, 64, 64]] * 5) == pytest.approx((5.0, .8, .8))
    # not anisotropic (2 <= 3 * 1): the median per axis
    assert nnunet.nnunet_target_spacing([[2, 1, 1.2], [2, 1, 1], [3, 1.4, 1]]) == \
        pytest.approx((2.0, 1.0, 1.0))
    # the 10th percentile (0.2 + 0.4 * 0.1 = 0.24) may not get finer than the other axes
    low = [[0.2, 1, 1], [0.3, 1, 1], [4, 1, 1], [4, 1, 1], [4, 1, 1]]
    assert nnunet.nnunet_target_spacing(low) == pytest.approx((1.0 + 1e-5, 1.0, 1.0))


def test_resampled_shape_rounds_like_nnunet():
    assert nnunet.resampled_shape((3, 10, 12), (8, 1.5, 1.25), (4, 0.75, 2.5)) == (6, 20, 6)
    assert nnunet.resampled_shape((3, 10, 10), (6, 1, 1), (4, 1, 1)) == (4, 10, 10)  # 4.5 -> 4


def test_resample_anisotropic_is_nearest_along_z():
    rng = np.random.default_rng(0)
    image = rng.random((3, 5, 6)).astype(np.float32)
    label = rng.integers(0, 4, (3, 5, 6))
    # (6, 1, 1) -> (3, 1, 1): in-plane unchanged, z doubled by nearest neighbour
    new_image, new_label = nnunet.resample_volume(image, label, (6, 1, 1), (3, 1, 1))
    np.testing.assert_allclose(new_image, image.repeat(2, axis=0), atol=1e-6)
    np.testing.assert_array_equal(new_label, label.repeat(2, axis=0))
    assert new_image.dtype == np.float32 and new_label.dtype == np.uint8
    # the coarse axis may be any axis: x here
    img_x, lbl_x = nnunet.resample_volume(image, label, (1, 1, 6), (1, 1, 3))
    np.testing.assert_allclose(img_x, image.repeat(2, axis=2), atol=1e-6)
    np.testing.assert_array_equal(lbl_x, label.repeat(2, axis=2))


def test_resample_labels_keep_labels():
    rng = np.random.default_rng(1)
    label = rng.integers(0, 5, (4, 6, 5))
    image = rng.random(label.shape)
    up_image, up = nnunet.resample_volume(image, label, (2, 2, 2), (1, 1, 1))
    assert up.shape == (8, 12, 10) and set(np.unique(up)) == set(range(5))
    # one-hot linear + argmax: halving the grid again gives back every label
    _, down = nnunet.resample_volume(up_image, up, (1, 1, 1), (2, 2, 2))
    np.testing.assert_array_equal(down, label)
    # labels varying along one axis only: a 2x upsampling is the parent voxel's label
    strip = np.broadcast_to(np.array([0, 3, 3, 1, 0, 2])[None, None, :], (3, 3, 6))
    _, up_strip = nnunet.resample_volume(np.zeros(strip.shape), strip, (1, 1, 1), (.5, .5, .5))
    np.testing.assert_array_equal(up_strip, strip.repeat(2, 0).repeat(2, 1).repeat(2, 2))
    # one-hot linear is not nearest neighbour: an isolated voxel upsampled 2x gives each child
    # 0.75 ** 3 = 0.42 of its own class against 0.58 of background, so it vanishes
    dot = np.zeros((3, 3, 3), int)
    dot[1, 1, 1] = 2
    assert not nnunet.resample_volume(dot, dot, (2, 2, 2), (1, 1, 1))[1].any()
    # a 2x2x2 block survives, but for its 8 corners (0.42 again)
    block = dot.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    up_block = nnunet.resample_volume(block, block, (2, 2, 2), (1, 1, 1))[1]
    assert (up_block == 2).sum() == 4 ** 3 - 8 and up_block[4, 5, 5] == 2 != up_block[4, 4, 4]
    # same spacing: unchanged
    same_image, same = nnunet.resample_volume(image, label, (2, 2, 2), (2, 2, 2))
    np.testing.assert_array_equal(same, label)
    np.testing.assert_allclose(same_image, image, rtol=1e-6)


def test_resample_image_is_cubic_spline():
    # a cubic spline reproduces a parabola away from the borders; linear interpolation would
    # be off by 0.25 * 0.75 * f'' / 2 = 0.01875 at these positions
    x = np.arange(40, dtype=np.float64)
    parabola = np.broadcast_to((x ** 2 / 10)[None, None, :], (4, 4, 40))
    new, _ = nnunet.resample_volume(parabola, np.zeros(parabola.shape, int), (1, 1, 1),
                                (1, 1, 0.5))
    assert new.shape == (4, 4, 80)
    pos = (np.arange(80) + 0.5) / 2 - 0.5  # pixel-centre positions in the source
    np.testing.assert_allclose(new[2, 2, 20:-20], pos[20:-20] ** 2 / 10, atol=2e-3)


def test_foreground_stats_by_hand():
    image = np.array([[[1., 9., 2.], [3., 4., 7.]]])
    label = np.array([[[1, 0, 2], [1, 3, 0]]])
    samples = [nnunet.sample_foreground(image, label)]
    np.testing.assert_array_equal(np.sort(samples[0]), [1, 2, 3, 4])
    stats = nnunet.foreground_stats(samples)
    # [1, 2, 3, 4]: mean 2.5, population std sqrt(1.25); percentiles at indices 0.015, 2.985
    assert stats == pytest.approx(dict(mean=2.5, std=1.25 ** 0.5, percentile_00_5=1.015,
                                       percentile_99_5=3.985))
    big = np.arange(1000.)[None, None]
    sub = nnunet.sample_foreground(big, np.ones(big.shape), max_voxels=10)
    assert sub.size == 10 and set(sub) <= set(big.ravel())
    # nnU-Net draws with replacement: a case with fewer labelled voxels still gives max_voxels
    few = nnunet.sample_foreground(image, label, max_voxels=50)
    assert few.size == 50 and set(few) == {1., 2., 3., 4.}
    np.testing.assert_array_equal(sub, nnunet.sample_foreground(big, np.ones(big.shape), 10))
    with pytest.raises(ConversionError, match='no labelled voxels'):
        nnunet.foreground_stats([np.zeros(0)])


def test_parse_target_spacing():
    assert nnunet.parse_target_spacing('none') is None and nnunet.parse_target_spacing(None) is None
    assert nnunet.parse_target_spacing('auto') == 'auto'
    assert nnunet.parse_target_spacing('3,0.8,0.7') == (3.0, 0.8, 0.7)
    with pytest.raises(ConversionError, match="'3,0'.*z,y,x"):
        nnunet.parse_target_spacing('3,0')


# ---------------------------------------------------------------------------------------------
# ACDC


@pytest.fixture(scope='module')
def acdc_out(tmp_path_factory, acdc):
    tmp = tmp_path_factory.mktemp('acdc')
    cases = write_acdc(tmp / 'src')
    meta = acdc.convert_acdc(str(tmp / 'src'), str(tmp / 'out'))
    return dict(out=tmp / 'out', cases=cases, meta=meta)


def _patients(names):
    return sorted({int(n[7:10]) for n in names})


def test_acdc_official_split(acdc_out):
    out = acdc_out['out']
    train, val, test = (_split(out, s) for s in ('train_volumes', 'val', 'test'))
    assert (len(train), len(val), len(test)) == (140, 20, 40)
    assert _patients(val) == HAND_VAL and _patients(test) == HAND_TEST
    assert _patients(train) == [p for p in range(1, 101) if p not in HAND_VAL + HAND_TEST]
    assert val[:2] == ['patient089_frame01', f'patient089_frame{5 + 89 % 7:02d}']
    assert sorted(p.stem for p in (out / 'train_volumes').iterdir()) == sorted(train)
    assert sorted(p.stem for p in (out / 'test_volumes').iterdir()) == sorted(val + test)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['classes'] == ['background', 'RV', 'MYO', 'LV'] and meta['intensity'] == 'zscore'
    assert meta['target_spacing'] is None and meta['ct_foreground'] is None
    assert meta['phases']['patient001_frame01'] == 'ED'
    assert meta['phases'][f'patient001_frame{5 + 1 % 7:02d}'] == 'ES'


def test_acdc_volume_axes_zscore_and_spacing(acdc_out):
    image, label = acdc_out['cases']['patient002_frame01']
    vol = np.load(acdc_out['out'] / 'test_volumes' / 'patient002_frame01.npz')
    assert vol['image'].shape == (3, 10, 12) and vol['label'].dtype == np.uint8
    np.testing.assert_array_equal(vol['label'], label.transpose(2, 1, 0))
    hand = (image - image.mean()) / image.std()
    np.testing.assert_allclose(vol['image'], hand.transpose(2, 1, 0), atol=1e-4)
    np.testing.assert_allclose(vol['spacing'], (10.0, 1.5, 1.25))
    assert 'native_label' not in vol.files


def test_acdc_resampled_keeps_native_grid(tmp_path, acdc):
    z = {1: 4.0, 4: 6.0, 5: 8.0, 6: 10.0, 7: 10.0, 2: 8.0, 89: 8.0}
    cases = write_acdc(tmp_path / 'src', patients=z, z_of=z.get)
    with pytest.warns(UserWarning, match='lacks 93 of the 100'):
        meta = acdc.convert_acdc(str(tmp_path / 'src'), str(tmp_path / 'out'),
                                 target_spacing='auto')
    # training z spacings (each patient twice) 4,4,6,6,8,8,10,10,10,10: median 8 > 3 * 1.5 and
    # 3 * 3 < 10 voxels, so z gets the 10th percentile, 4; y and x the medians 1.5 and 1.25
    assert meta['target_spacing'] == pytest.approx([4.0, 1.5, 1.25])
    vol = np.load(tmp_path / 'out' / 'test_volumes' / 'patient089_frame01.npz')
    image, label = cases['patient089_frame01']
    native = label.transpose(2, 1, 0)
    np.testing.assert_array_equal(vol['native_label'], native)
    np.testing.assert_array_equal(vol['native_shape'], (3, 10, 12))
    np.testing.assert_allclose(vol['native_spacing'], (8.0, 1.5, 1.25))
    np.testing.assert_allclose(vol['spacing'], (4.0, 1.5, 1.25))
    # 8 mm -> 4 mm along an anisotropic z: nearest neighbour, each slice twice
    np.testing.assert_array_equal(vol['label'], native.repeat(2, axis=0))
    hand = ((image - image.mean()) / image.std()).transpose(2, 1, 0)
    np.testing.assert_allclose(vol['image'], hand.repeat(2, axis=0), atol=1e-4)
    train = np.load(tmp_path / 'out' / 'train_volumes' / 'patient001_frame01.npz')
    assert train['image'].shape == (3, 10, 12) and 'native_label' not in train.files


def _acdc_case(root, patient, frame=1):
    return root / 'training' / f'patient{patient:03d}' / f'patient{patient:03d}_frame{frame:02d}'


@pytest.mark.parametrize('fault, message', [
    ('missing', r'label file .*patient089_frame01_gt\.nii\.gz .*does not exist'),
    ('shape', r'patient089_frame01_gt\.nii\.gz has shape \(12, 10, 4\) .*\(12, 10, 3\)'),
    ('affine', r'patient089_frame01_gt\.nii\.gz has affine .*not on the image\'s grid'),
    ('label', r'patient089_frame01_gt\.nii\.gz: unknown label id\(s\) \[7\]; the file holds '
              r'ids \[0, 1, 2, 3, 7\], allowed are 0-3'),
])
def test_acdc_bad_input_named_and_nothing_left(tmp_path, acdc, fault, message):
    write_acdc(tmp_path / 'src', patients=(1, 2, 89))  # patient089 is converted last
    gt = Path(f'{_acdc_case(tmp_path / "src", 89)}_gt.nii.gz')
    label = np.zeros(ACDC_XYZ, np.uint8)
    if fault == 'missing':
        gt.unlink()
    elif fault == 'shape':
        save_nii(gt, np.zeros((12, 10, 4), np.uint8), (1.25, 1.5, 10.0))
    elif fault == 'affine':
        affine = np.diag([1.25, 1.5, 10.0, 1.0])
        affine[0, 3] = 5.0  # shifted origin
        save_nii(gt, label, None, affine=affine)
    else:
        label[0, 0, 0], label[1, 0, 0], label[2, 0, 0], label[3, 0, 0] = 7, 1, 2, 3
        save_nii(gt, label, (1.25, 1.5, 10.0))
    with pytest.raises(acdc.ACDCConversionError, match=message):
        _quiet(acdc.convert_acdc, str(tmp_path / 'src'), str(tmp_path / 'out'))
    assert _no_output(tmp_path / 'out')


def test_acdc_info_cfg_frames(tmp_path, acdc):
    write_acdc(tmp_path / 'src', patients=(1, 2))
    extra = Path(f'{_acdc_case(tmp_path / "src", 1, 3)}.nii.gz')
    save_nii(extra, np.zeros(ACDC_XYZ, np.float32), (1.25, 1.5, 10.0))  # neither ED nor ES
    with pytest.warns(UserWarning, match=r"\['patient001_frame03'\] are neither ED nor ES"):
        acdc.convert_acdc(str(tmp_path / 'src'), str(tmp_path / 'out'))
    assert _split(tmp_path / 'out', 'train_volumes') == ['patient001_frame01',
                                                         'patient001_frame06']
    Path(f'{_acdc_case(tmp_path / "src", 2, 5 + 2 % 7)}.nii.gz').unlink()
    with pytest.raises(acdc.ACDCConversionError,
                       match=r'patient002_frame07\.nii\.gz does not exist, but .*Info\.cfg'):
        _quiet(acdc.convert_acdc, str(tmp_path / 'src'), str(tmp_path / 'out2'))
    assert _no_output(tmp_path / 'out2')


def test_acdc_cli_error_status(tmp_path, acdc, capsys):
    (tmp_path / 'src').mkdir()
    assert _cli('acdc').main([str(tmp_path / 'src'), str(tmp_path / 'out')]) == 1
    assert 'holds no patientXXX folder' in capsys.readouterr().err
    assert _cli('acdc').main([str(tmp_path / 'src'), str(tmp_path / 'out'),
                      '--target-spacing', 'x']) == 1


# ---------------------------------------------------------------------------------------------
# AMOS


def test_kfold_matches_sklearn_permutation(amos):
    # sklearn KFold(5, shuffle=True, random_state=12345) on 7 items: RandomState(12345)
    # shuffles arange(7) to [6 3 4 0 1 5 2]; fold sizes 2, 2, 1, 1, 1; lists in sorted order
    folds = amos.kfold_splits(['g', 'a', 'b', 'c', 'd', 'e', 'f'])
    assert [val for _, val in folds] == [['d', 'g'], ['a', 'e'], ['b'], ['f'], ['c']]
    assert folds[0][0] == ['a', 'b', 'c', 'e', 'f']
    with pytest.raises(amos.AMOSConversionError, match='at least 5'):
        amos.kfold_splits(['a', 'b'])


@pytest.fixture(scope='module')
def amos_out(tmp_path_factory, amos):
    tmp = tmp_path_factory.mktemp('amos')
    cases = write_amos(tmp / 'src')
    meta = _quiet(amos.convert_amos, str(tmp / 'src'), str(tmp / 'out'))
    return dict(src=tmp / 'src', out=tmp / 'out', cases=cases, meta=meta)


def test_amos_ct_only_and_disjoint_folds(amos_out):
    out = amos_out['out']
    ct = [f'amos_{n:04d}' for n in range(1, 13)]
    assert _split(out, 'train_volumes') == ct  # no MRI (501, 502), no validation cases
    assert sorted(p.stem for p in (out / 'train_volumes').iterdir()) == ct
    vals = [_split(out, f'fold{k}_val') for k in range(5)]
    assert [len(v) for v in vals] == [3, 3, 2, 2, 2]
    assert sorted(sum(vals, [])) == ct  # disjoint and covering
    for k, val in enumerate(vals):
        assert _split(out, f'fold{k}_train') == [c for c in ct if c not in val]
        assert val == sorted(val)
    # RandomState(12345) shuffles arange(12) to [8 0 3 7 11 10 6 9 4 1 5 2]
    assert vals[0] == ['amos_0001', 'amos_0004', 'amos_0009']
    assert vals[4] == ['amos_0003', 'amos_0006']
    assert amos_out['meta']['folds']['num_val'] == [3, 3, 2, 2, 2]


def test_amos_hu_kept_and_foreground_stats(amos_out):
    hu, label = amos_out['cases']['amos_0004']
    vol = np.load(amos_out['out'] / 'train_volumes' / 'amos_0004.npz')
    np.testing.assert_array_equal(vol['image'], hu.transpose(2, 1, 0))
    np.testing.assert_array_equal(vol['label'], label.transpose(2, 1, 0))
    np.testing.assert_allclose(vol['spacing'], (3.0, 0.7, 0.8))  # 2 + 4 % 3
    meta = json.loads((amos_out['out'] / 'meta.json').read_text())
    assert meta['intensity'] == 'hu' and len(meta['classes']) == 16
    assert meta['classes'][9] == 'inferior_vena_cava' and meta['classes'][15] == 'prostate_uterus'
    # nnU-Net's fingerprint over the 12 CT cases (each case weighs the same), on the stored
    # (z, y, x) arrays
    cases = [amos_out['cases'][f'amos_{n:04d}'] for n in range(1, 13)]
    assert meta['ct_foreground'] == nnunet_fingerprint_stats(
        [(hu.transpose(2, 1, 0), label.transpose(2, 1, 0)) for hu, label in cases])


def test_amos_include_validation_and_resampling(tmp_path, amos, amos_out):
    meta = _quiet(amos.convert_amos, str(amos_out['src']), str(tmp_path / 'out'),
                  include_validation=True, target_spacing='2,0.7,0.8')
    names = _split(tmp_path / 'out', 'train_volumes')
    assert names == [f'amos_{n:04d}' for n in range(1, 15)]  # + 13, 14; not MRI 505
    assert sorted(sum((_split(tmp_path / 'out', f'fold{k}_val') for k in range(5)), [])) == names
    assert meta['skipped_mri'] == dict(Tr=2, Va=1) and meta['target_spacing'] == [2, 0.7, 0.8]
    vol = np.load(tmp_path / 'out' / 'train_volumes' / 'amos_0004.npz')  # z spacing 3 -> 2
    assert vol['image'].shape == (4, 7, 8) == vol['label'].shape  # round(3 * 3 / 2) = 4 (4.5)
    np.testing.assert_array_equal(vol['native_label'],
                                  amos_out['cases']['amos_0004'][1].transpose(2, 1, 0))
    np.testing.assert_array_equal(vol['native_shape'], (3, 7, 8))


def test_amos_resampled_is_clipped_to_native_statistics_first(tmp_path, amos, amos_out,
                                                              monkeypatch):
    # nnU-Net's order: statistics of the native cases (a pass of their own), then every case
    # clipped to their [0.5, 99.5] percentiles before it is resampled (the values stay HU)
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import \
        DatasetFingerprintExtractor

    from mmsam.datasets.converters import case_volumes
    per_case = 2000  # nnU-Net's 10e7 // N draws, made small for speed
    monkeypatch.setattr(case_volumes, 'FOREGROUND_SAMPLE_BUDGET', 12 * per_case)
    meta = _quiet(amos.convert_amos, str(amos_out['src']), str(tmp_path / 'out'),
                  target_spacing='2,0.5,0.8')
    cases = [amos_out['cases'][f'amos_{n:04d}'] for n in range(1, 13)]
    draws = np.concatenate([DatasetFingerprintExtractor.collect_foreground_intensities(
        label.transpose(2, 1, 0)[None], hu.transpose(2, 1, 0)[None],
        num_samples=per_case)[0][0] for hu, label in cases])
    assert meta['ct_foreground'] == dict(
        mean=float(np.mean(draws)), std=float(np.std(draws)),
        percentile_00_5=float(np.percentile(draws, 0.5)),
        percentile_99_5=float(np.percentile(draws, 99.5)))
    low, high = nnunet.ct_clip_range(meta['ct_foreground'])
    hu, label = amos_out['cases']['amos_0004']
    vol = np.load(tmp_path / 'out' / 'train_volumes' / 'amos_0004.npz')
    expected = nnunet.resample_volume(hu.transpose(2, 1, 0), label.transpose(2, 1, 0),
                                      (3.0, 0.7, 0.8), (2.0, 0.5, 0.8), (low, high))
    np.testing.assert_array_equal(vol['image'], expected[0])
    np.testing.assert_array_equal(vol['label'], expected[1])
    assert low <= vol['image'].min() and vol['image'].max() <= high < hu.max()


@pytest.mark.parametrize('fault, message', [
    ('missing', r'label file .*labelsTr/amos_0012\.nii\.gz .*does not exist'),
    ('shape', r'amos_0012\.nii\.gz has shape \(8, 7, 2\) but its image'),
    ('affine', r'labelsTr/amos_0012\.nii\.gz has affine .*not on the image\'s grid'),
    ('label', r'amos_0012\.nii\.gz: unknown label id\(s\) \[16, 20\]; .*allowed are 0-15'),
    ('json', r'dataset\.json lists label ids \[0, 1, 2\]'),
])
def test_amos_bad_input_named_and_nothing_left(tmp_path, amos, fault, message):
    write_amos(tmp_path / 'src', tr=tuple(range(1, 13)), va=())
    gt = tmp_path / 'src' / 'labelsTr' / 'amos_0012.nii.gz'  # the last case converted
    zooms = (0.8, 0.7, 2.0)
    if fault == 'missing':
        gt.unlink()
    elif fault == 'shape':
        save_nii(gt, np.zeros((8, 7, 2), np.uint8), zooms)
    elif fault == 'affine':
        save_nii(gt, np.zeros(AMOS_XYZ, np.uint8), (0.8, 0.7, 2.5))
    elif fault == 'label':
        label = np.zeros(AMOS_XYZ, np.uint8)
        label[0, 0, :2] = 16, 20
        save_nii(gt, label, zooms)
    else:
        (tmp_path / 'src' / 'dataset.json').write_text(json.dumps(dict(
            labels={'0': 'background', '1': 'spleen', '2': 'liver'})))
    with pytest.raises(amos.AMOSConversionError, match=message):
        _quiet(amos.convert_amos, str(tmp_path / 'src'), str(tmp_path / 'out'))
    assert _no_output(tmp_path / 'out')

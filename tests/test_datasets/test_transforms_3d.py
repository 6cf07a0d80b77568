"""The 3D (volume) transforms: loading, nnU-Net normalisation, patch sampling, augmentation.

The augmentations equal nnU-Net 2.5.1's (batchgeneratorsv2) draw for draw: that is checked in
tests/test_nnunet_augmentation_equivalence.py; here they are checked by hand-worked values.
"""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from scipy import ndimage

from mmsam.datasets.transforms import (LoadVolume, NormalizeIntensity3D, PackVolumeInputs,
                                       RandomBrightness3D, RandomContrast3D, RandomGamma3D,
                                       RandomGaussianBlur3D, RandomGaussianNoise3D,
                                       RandomLowResolution3D, RandomMirror3D, RandomPatchCrop3D,
                                       RandomSpatial3D)
from mmsam.datasets.io.npz import save_volume
from mmsam.utils.io import atomic_savez

CT = dict(mean=40., std=20., percentile_00_5=-100., percentile_99_5=200.)


def labelled_volume(shape=(6, 24, 24), seed=0):
    """Blocks of classes 1-3 on background; image = 10 * label + a pattern in [0, 3)."""
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint8)
    d, h, w = shape
    label[1:4, 3:10, 4:12] = 1
    label[2:, 12:20, 10:20] = 2
    label[d - 2:, h - 3:, :3] = 3  # a small class in a corner
    pattern = 3 * rng.random(shape).astype(np.float32)
    img = (10 * label + pattern).astype(np.float32)
    return dict(img=img, gt_seg_map=label, seg_fields=['gt_seg_map'], img_shape=shape,
                ori_shape=shape)


def assert_aligned(results):
    np.testing.assert_array_equal(results['gt_seg_map'], np.floor(results['img'] / 10))


# ---- LoadVolume -----------------------------------------------------------------------------

def test_load_volume_reads_arrays_and_geometry(tmp_path):
    path = str(tmp_path / 'case.npz')
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    label = (image % 3).astype(np.uint8)
    save_volume(path, image, label, spacing=(2.5, 0.8, 0.7))
    out = LoadVolume()(dict(img_path=path, num_classes=3))
    np.testing.assert_array_equal(out['img'], image)
    np.testing.assert_array_equal(out['gt_seg_map'], label)
    assert out['img'].dtype == np.float32 and out['gt_seg_map'].dtype == np.uint8
    assert out['spacing'] == (2.5, 0.8, 0.7) and out['native_spacing'] == (2.5, 0.8, 0.7)
    assert out['ori_shape'] == out['img_shape'] == out['native_shape'] == (2, 3, 4)
    assert out['seg_fields'] == ['gt_seg_map']
    with pytest.raises(ValueError, match=r'case\.npz: label value 2 >= num_classes 2'):
        LoadVolume()(dict(img_path=path, num_classes=2))


def test_load_volume_native_label(tmp_path):
    path = str(tmp_path / 'resampled.npz')
    native = np.ones((3, 5, 5), np.uint8)
    atomic_savez(path, image=np.zeros((2, 4, 4), np.float32), label=np.zeros((2, 4, 4), np.uint8),
                 spacing=np.array([3., 1., 1.]), native_label=native,
                 native_spacing=np.array([2., 0.8, 0.8]), native_shape=np.array([3, 5, 5]))
    plain = LoadVolume()(dict(img_path=path))
    assert plain['gt_seg_map'].shape == (2, 4, 4) and plain['native_shape'] == (3, 5, 5)
    assert plain['native_spacing'] == (2., 0.8, 0.8)
    out = LoadVolume(native_label=True)(dict(img_path=path))
    np.testing.assert_array_equal(out['gt_seg_map'], native)
    assert out['img'].shape == out['ori_shape'] == (2, 4, 4)
    with pytest.raises(ValueError, match='native grid'):
        RandomMirror3D(prob=1.)(out)  # a spatial transform refuses the native-grid label


# ---- NormalizeIntensity3D -------------------------------------------------------------------

def test_ct_normalisation_hand_worked():
    img = np.array([-1000., 0., 50., 100., 3000.], np.float32).reshape(1, 1, 5)
    out = NormalizeIntensity3D('ct')(dict(img=img, intensity_properties=CT))
    # clip to [-100, 200] -> [-100, 0, 50, 100, 200], then (x - 40) / 20
    np.testing.assert_allclose(out['img'].ravel(), [-7., -2., 0.5, 3., 8.], rtol=1e-6)
    assert out['img'].dtype == np.float32
    no_clip = NormalizeIntensity3D('ct', clip=False)(dict(img=img, intensity_properties=CT))
    np.testing.assert_allclose(no_clip['img'].ravel(), [-52., -2., 0.5, 3., 148.], rtol=1e-6)


def test_zscore_and_none():
    img = np.array([1., 2., 3., 4.], np.float32).reshape(1, 2, 2)
    out = NormalizeIntensity3D('zscore')(dict(img=img.copy()))
    # mean 2.5, population std sqrt(1.25)
    np.testing.assert_allclose(out['img'].ravel(), np.array([-1.5, -.5, .5, 1.5]) / 1.25 ** .5,
                               rtol=1e-6)
    np.testing.assert_array_equal(NormalizeIntensity3D('none')(dict(img=img))['img'], img)


def test_ct_mode_without_statistics_names_key_and_flag():
    with pytest.raises(ValueError, match=r"ct_foreground.*--intensity hu"):
        NormalizeIntensity3D('ct')(dict(img=np.zeros((1, 2, 2), np.float32),
                                        intensity_properties=None, intensity='unit'))
    with pytest.raises(ValueError, match=r"lacks \['percentile_99_5'\]"):
        stats = {k: v for k, v in CT.items() if k != 'percentile_99_5'}
        NormalizeIntensity3D('ct')(dict(img=np.zeros((1, 2, 2)), intensity_properties=stats))
    with pytest.raises(ValueError, match='mode'):
        NormalizeIntensity3D('hu')


# ---- RandomPatchCrop3D ----------------------------------------------------------------------

def test_start_bounds_follow_nnunet_get_bbox():
    crop = RandomPatchCrop3D((4, 64, 64), rotation_margin=True)
    # nnU-Net's initial patch size: a 90-degree turn only swaps extents, so 64 / 0.85 -> 75
    assert crop.window == (4, 75, 75)
    # need_to_pad = 11 in-plane: start in [-6, 100 + 6 - 75]; depth: [0, 10 - 4]
    assert crop.start_bounds((10, 100, 100)) == ([0, -6, -6], [6, 31, 31])
    plain = RandomPatchCrop3D((4, 64, 64))
    # a volume smaller than the window: centred padding (need 4 -> start -2)
    assert plain.start_bounds((10, 60, 64)) == ([0, -2, 0], [6, -2, 0])


def test_small_volume_is_zero_padded():
    np.random.seed(0)
    img = np.ones((2, 5, 5), np.float32) + 1
    results = dict(img=img, gt_seg_map=np.ones((2, 5, 5), np.uint8), seg_fields=['gt_seg_map'])
    out = RandomPatchCrop3D((4, 8, 9), fg_prob=0.)(results)
    assert out['img'].shape == out['gt_seg_map'].shape == out['img_shape'] == (4, 8, 9)
    assert out['img'].sum() == 2 * 50 and out['gt_seg_map'].sum() == 50  # nothing lost
    assert set(np.unique(out['img'])) == {0., 2.} and out['patch_size'] == (4, 8, 9)
    # centred padding: lacking (2, 3, 4) voxels, starts -1, -2 or -1 (odd: either way), -2
    (z0, _), (y0, _), (x0, _) = out['crop_bbox']
    assert z0 == -1 and y0 in (-2, -1) and x0 == -2


def test_foreground_oversampling_always_hits_foreground():
    shape = (12, 48, 48)
    label = np.zeros(shape, np.uint8)
    label[0, 0, 0] = 1  # a single voxel in a corner
    label[10:12, 40:48, 40:48] = 2
    img = label.astype(np.float32)
    crop = RandomPatchCrop3D((4, 16, 16), fg_prob=1.)
    np.random.seed(0)
    hit = {1: 0, 2: 0}
    for _ in range(60):
        out = crop(dict(img=img, gt_seg_map=label, seg_fields=['gt_seg_map']))
        present = set(np.unique(out['gt_seg_map'])) - {0}
        assert present, 'a forced foreground patch holds no foreground'
        for c in present:
            hit[c] += 1
    # classes are chosen uniformly, however many voxels they have
    assert hit[1] > 15 and hit[2] > 15
    np.random.seed(0)
    none = sum((RandomPatchCrop3D((4, 16, 16), fg_prob=0.)(
        dict(img=img, gt_seg_map=label, seg_fields=['gt_seg_map']))['gt_seg_map'] == 1).any()
        for _ in range(60))
    assert none < 10  # uniform crops rarely contain the corner voxel


def test_forced_patch_is_centred_on_a_foreground_voxel():
    label = np.zeros((10, 40, 40), np.uint8)
    label[5, 20, 17] = 3
    np.random.seed(1)
    out = RandomPatchCrop3D((4, 8, 8), fg_prob=1.)(
        dict(img=np.zeros((10, 40, 40), np.float32), gt_seg_map=label, seg_fields=['gt_seg_map']))
    assert out['crop_bbox'] == ((3, 7), (16, 24), (13, 21))
    assert out['gt_seg_map'][2, 4, 4] == 3


# ---- spatial transforms keep image and labels aligned ---------------------------------------

def binary_volume(shape, seed):
    """A random binary label; image channels: its indicator and ones (to see the border)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((shape[0], shape[1] // 4, shape[2] // 4)) > 0.5
    label = coarse.repeat(4, 1).repeat(4, 2).astype(np.uint8)
    img = np.stack([label, np.ones_like(label)]).astype(np.float32)
    return dict(img=img, gt_seg_map=label, seg_fields=['gt_seg_map'])


@pytest.mark.parametrize('seed', range(4))
def test_spatial_and_mirror_keep_image_and_labels_aligned(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)
    results = binary_volume((4, 24, 24), seed)
    results['patch_size'] = (4, 16, 16)
    for step in (RandomSpatial3D(rotate_prob=1., scale_prob=1.), RandomMirror3D(prob=0.5)):
        results = step(results)
        # channel 0 is the label's indicator, resampled bilinearly as the labels' weights:
        # inside the input (channel 1 = 1) the label is the larger weight (away from ties and
        # float16 rounding)
        indicator, inside = results['img']
        clear = (np.abs(indicator - 0.5) > 0.01) & (inside > 0.999)
        assert clear.mean() > 0.5
        np.testing.assert_array_equal(results['gt_seg_map'][clear], (indicator > 0.5)[clear])
    assert results['img'].shape == (2, 4, 16, 16) and results['img_shape'] == (4, 16, 16)


def test_spatial_rotation_by_90_degrees_is_exact():
    results = labelled_volume(shape=(3, 15, 15))
    image, label = results['img'].copy(), results['gt_seg_map'].copy()
    out = RandomSpatial3D(rotate_prob=1., rotate_range=(90, 90), scale_prob=0.)(results)
    turned = [np.rot90(image, k, axes=(1, 2)) for k in (1, 3)]
    k = int(np.argmin([np.abs(out['img'] - t).max() for t in turned]))
    np.testing.assert_allclose(out['img'], turned[k], atol=1e-4)  # bilinear at grid points
    np.testing.assert_array_equal(out['gt_seg_map'], np.rot90(label, (1, 3)[k], axes=(1, 2)))


def test_spatial_labels_take_the_largest_weight_lower_id_on_ties():
    # input width 5, output 4, identity affine: outputs sample the midpoints 0.5 ... 3.5
    label = np.array([0, 1, 2, 2, 2], np.uint8).reshape(1, 1, 5)
    out = RandomSpatial3D(patch_size=(1, 1, 4), rotate_prob=1., rotate_range=(0, 0),
                          scale_prob=0.)(dict(img=10. * label.astype(np.float32),
                                              gt_seg_map=label, seg_fields=['gt_seg_map']))
    np.testing.assert_allclose(out['img'].ravel(), [5., 15., 20., 20.], atol=1e-5)
    # 0.5 / 0.5 ties: no weight exceeds 0.7, the argmax keeps the lower id
    np.testing.assert_array_equal(out['gt_seg_map'].ravel(), [0, 1, 2, 2])


def test_spatial_outside_the_volume_is_its_own_label_then_background():
    """nnU-Net pads labels with -1, a label in the weighting, set to background at the end."""
    def window():
        return dict(img=np.ones((1, 1, 6), np.float32), gt_seg_map=np.ones((1, 1, 6), np.uint8),
                    seg_fields=['gt_seg_map'], patch_size=(1, 1, 5),
                    crop_bbox=((0, 1), (0, 1), (-3, 3)), crop_source_shape=(1, 1, 10))

    out = RandomSpatial3D(rotate_prob=1., rotate_range=(0, 0), scale_prob=0.)(window())
    # samples at 0.5 ... 4.5; window voxels 0-2 were outside the volume (-1), 3-5 class 1;
    # 2.5 is a 0.5 / 0.5 tie between -1 and 1: -1 (the lower id) wins, then becomes 0
    np.testing.assert_array_equal(out['gt_seg_map'].ravel(), [0, 0, 0, 1, 1])
    np.testing.assert_allclose(out['img'].ravel(), [1., 1., 1., 1., 1.])
    no_margin = {k: v for k, v in window().items() if k != 'crop_bbox'}
    out = RandomSpatial3D(rotate_prob=1., rotate_range=(0, 0), scale_prob=0.)(no_margin)
    np.testing.assert_array_equal(out['gt_seg_map'].ravel(), [1, 1, 1, 1, 1])


def test_spatial_scale_samples_wider_coordinates():
    img = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    out = RandomSpatial3D(rotate_prob=0., scale_prob=1., scale_range=(2, 2))(
        dict(img=img, gt_seg_map=img.astype(np.uint8), seg_fields=['gt_seg_map']))
    # output o samples input 2 + 2 (o - 2): rows/cols 1, 2, 3 read 0, 2, 4; the rest is outside
    expected = np.zeros((1, 5, 5), np.float32)
    expected[0, 1:4, 1:4] = img[0][np.ix_([0, 2, 4], [0, 2, 4])]
    np.testing.assert_allclose(out['img'], expected, atol=1e-4)
    np.testing.assert_array_equal(out['gt_seg_map'], expected.astype(np.uint8))


def test_spatial_without_augmentation_centre_crops_the_margin():
    np.random.seed(0)
    results = labelled_volume(shape=(5, 30, 31))
    results['patch_size'] = (4, 16, 16)
    image = results['img'].copy()
    out = RandomSpatial3D(rotate_prob=0., scale_prob=0.)(results)
    # integer centre crop: starts (5 - 4) // 2 = 0, (30 - 16) // 2 = 7, (31 - 16) // 2 = 7
    np.testing.assert_array_equal(out['img'], image[0:4, 7:23, 7:23])
    assert out['img_shape'] == (4, 16, 16)
    assert_aligned(out)
    # the affine path at angle 0, scale 1 lands on the same pixels (bilinear at grid points)
    # when the margin is even (an odd one samples half-pixels, as batchgeneratorsv2 does)
    results = labelled_volume(shape=(5, 30, 30))
    results['patch_size'] = (4, 16, 16)
    image = results['img'].copy()
    out = RandomSpatial3D(rotate_prob=1., rotate_range=(0, 0), scale_prob=0.)(results)
    np.testing.assert_allclose(out['img'], image[0:4, 7:23, 7:23], atol=1e-4)
    assert_aligned(out)


def test_mirror_is_exact_flip():
    results = labelled_volume()
    image = results['img'].copy()
    np.random.seed(3)
    out = RandomMirror3D(prob=1.)(results)
    assert out['flip_axes'] == (0, 1, 2)
    np.testing.assert_array_equal(out['img'], image[::-1, ::-1, ::-1])
    assert out['img'].flags['C_CONTIGUOUS']
    assert_aligned(out)
    one = RandomMirror3D(prob=1., axes=(2, ))(labelled_volume())
    np.testing.assert_array_equal(one['img'], image[:, :, ::-1])


# ---- intensity augmentation -----------------------------------------------------------------

def ramp(shape=(4, 16, 16)):
    return np.linspace(0, 3, int(np.prod(shape)), dtype=np.float32).reshape(shape)


@pytest.mark.parametrize('transform', [
    RandomGaussianNoise3D(prob=0.), RandomGaussianBlur3D(prob=0.), RandomBrightness3D(prob=0.),
    RandomContrast3D(prob=0.), RandomLowResolution3D(prob=0.), RandomGamma3D(prob=0.)])
def test_intensity_prob_zero_is_identity(transform):
    img = ramp()
    np.testing.assert_array_equal(transform(dict(img=img.copy()))['img'], img)


def test_gaussian_noise_level():
    torch.manual_seed(0)
    img = np.zeros((8, 64, 64), np.float32)
    out = RandomGaussianNoise3D(prob=1., std_range=(0.05, 0.05))(dict(img=img))['img']
    assert out.dtype == np.float32 and abs(out.std() - 0.05) < 0.002 and abs(out.mean()) < 0.002


def test_gaussian_blur_matches_scipy():
    img = ramp() ** 2
    out = RandomGaussianBlur3D(prob=1., sigma_range=(0.7, 0.7), prob_per_channel=1.)(
        dict(img=img.copy()))['img']
    # batchgeneratorsv2's kernel: odd size round(6 sigma + 0.5) = 5 (radius 2), torch's
    # 'reflect' padding (scipy's 'mirror')
    expected = ndimage.gaussian_filter(img.astype(np.float64), 0.7, mode='mirror',
                                       truncate=2 / 0.7)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_brightness_contrast_gamma_hand_worked():
    x = np.array([0., 1., 2., 3.], np.float32).reshape(1, 2, 2)
    out = RandomBrightness3D(prob=1., multiplier_range=(1.2, 1.2))(dict(img=x.copy()))['img']
    np.testing.assert_allclose(out.ravel(), [0., 1.2, 2.4, 3.6], rtol=1e-6)
    # contrast 1.2 about the mean 1.5, clipped back to [0, 3]
    out = RandomContrast3D(prob=1., contrast_range=(1.2, 1.2))(dict(img=x.copy()))['img']
    np.testing.assert_allclose(out.ravel(), [0., 0.9, 2.1, 3.], rtol=1e-6)
    gamma = dict(prob=1., gamma_range=(2, 2), retain_stats=False)
    out = RandomGamma3D(**gamma)(dict(img=x.copy()))['img']
    np.testing.assert_allclose(out.ravel(), [0., 1 / 3, 4 / 3, 3.], rtol=1e-5, atol=1e-6)
    # inverted: the curve acts on -x (range [-3, 0]), then the sign is restored
    out = RandomGamma3D(invert_image=True, **gamma)(dict(img=x.copy()))['img']
    np.testing.assert_allclose(out.ravel(), [0., 5 / 3, 8 / 3, 3.], rtol=1e-5, atol=1e-6)
    img = ramp() ** 0.5
    out = RandomGamma3D(prob=1., gamma_range=(1.5, 1.5))(dict(img=img.copy()))['img']
    assert not np.allclose(out, img)
    np.testing.assert_allclose([out.mean(), out.std()], [img.mean(), img.std()], rtol=1e-4)


def test_brightness_factor_is_below_or_above_one_with_equal_chance():
    """nnU-Net 2.5.1's BGContrast draw: U(low, 1) or U(1, high), each with probability 0.5."""
    from scipy import stats
    torch.manual_seed(0)
    np.random.seed(0)
    one = np.ones((1, 1, 1), np.float32)
    # an asymmetric range tells the two-sided draw from a plain U(0.7, 1.5)
    transform = RandomBrightness3D(prob=1., multiplier_range=(0.7, 1.5))
    factors = np.array([transform(dict(img=one.copy()))['img'].item() for _ in range(2000)])
    assert factors.min() >= 0.7 and factors.max() <= 1.5

    def cdf(x):
        return np.where(x < 1, 0.5 * (x - 0.7) / 0.3, 0.5 + 0.5 * (x - 1) / 0.5)

    assert stats.kstest(factors, cdf).pvalue > 0.01
    assert stats.kstest(factors, stats.uniform(0.7, 0.8).cdf).pvalue < 1e-6


def test_low_resolution_is_in_plane_only():
    depth_profile = np.broadcast_to(np.arange(4, dtype=np.float32)[:, None, None], (4, 16, 16))
    out = RandomLowResolution3D(prob=1., zoom_range=(0.5, 0.5), prob_per_channel=1.)(
        dict(img=depth_profile.copy()))['img']
    np.testing.assert_allclose(out, depth_profile, atol=1e-5)  # depth untouched
    out = RandomLowResolution3D(prob=1., zoom_range=(0.5, 0.5), prob_per_channel=1.,
                                axes=(0, 1, 2))(dict(img=depth_profile.copy()))['img']
    assert np.abs(out - depth_profile).max() > 0.2  # unless asked for
    checker = (np.indices((4, 16, 16)).sum(0) % 2).astype(np.float32)
    out = RandomLowResolution3D(prob=1., zoom_range=(0.5, 0.5), prob_per_channel=1.)(
        dict(img=checker.copy()))['img']
    assert out.shape == checker.shape and np.abs(out - checker).mean() > 0.3
    same = RandomLowResolution3D(prob=1., zoom_range=(1, 1), prob_per_channel=1.)(
        dict(img=checker.copy()))['img']
    np.testing.assert_allclose(same, checker, atol=1e-5)


# ---- packing and configs --------------------------------------------------------------------

def test_pack_volume_inputs_shapes_and_metainfo():
    results = labelled_volume(shape=(4, 8, 8))
    results.update(case_id='case0001', spacing=(2., 1., 1.), native_shape=(5, 9, 9),
                   img_path='x.npz')
    results = RandomMirror3D(prob=1.)(results)
    results['img'] = results['img'][:, ::-1]  # a negative-stride view packs too
    packed = PackVolumeInputs()(results)
    assert packed['inputs'].shape == (1, 4, 8, 8) and packed['inputs'].dtype == torch.float32
    gt = packed['data_samples'].gt_sem_seg.data
    assert gt.shape == (4, 8, 8) and gt.dtype == torch.int64
    meta = packed['data_samples'].metainfo
    assert meta['is_volume'] is True and meta['case_id'] == 'case0001'
    assert meta['native_shape'] == (5, 9, 9) and meta['img_shape'] == (4, 8, 8)
    two = PackVolumeInputs()(dict(img=np.zeros((2, 4, 8, 8), np.float32)))
    assert two['inputs'].shape == (2, 4, 8, 8) and 'gt_sem_seg' not in two['data_samples']


def test_pack_refuses_an_uncropped_rotation_margin():
    np.random.seed(0)
    results = RandomPatchCrop3D((2, 8, 8), rotation_margin=True)(labelled_volume())
    with pytest.raises(ValueError, match='RandomSpatial3D must follow'):
        PackVolumeInputs()(results)


NNUNET_PIPELINE = [
    dict(type='LoadVolume'),
    dict(type='NormalizeIntensity3D', mode='ct'),
    dict(type='RandomPatchCrop3D', patch_size=(4, 16, 16), fg_prob=0.5, rotation_margin=True),
    dict(type='RandomSpatial3D', rotate_prob=0.2, rotate_range=(-180, 180), scale_prob=0.2,
         scale_range=(0.7, 1.4)),
    dict(type='RandomGaussianNoise3D', prob=0.1, std_range=(0, 0.1)),
    dict(type='RandomGaussianBlur3D', prob=0.2, sigma_range=(0.5, 1.), prob_per_channel=0.5),
    dict(type='RandomBrightness3D', prob=0.15, multiplier_range=(0.75, 1.25)),
    dict(type='RandomContrast3D', prob=0.15, contrast_range=(0.75, 1.25)),
    dict(type='RandomLowResolution3D', prob=0.25, zoom_range=(0.5, 1), prob_per_channel=0.5),
    dict(type='RandomGamma3D', prob=0.1, gamma_range=(0.7, 1.5), invert_image=True),
    dict(type='RandomGamma3D', prob=0.3, gamma_range=(0.7, 1.5)),
    dict(type='RandomMirror3D', prob=0.5, axes=(0, 1, 2)),
    dict(type='PackVolumeInputs'),
]


def test_config_pipeline_builds_and_runs(tmp_path):
    """The nnU-Net training pipeline as a config writes it (default_scope='mmsam')."""
    path = str(tmp_path / 'case.npz')
    vol = labelled_volume(shape=(6, 20, 20))
    save_volume(path, vol['img'] * 30, vol['gt_seg_map'], spacing=(3., 1., 1.))
    pipeline = Compose(NNUNET_PIPELINE)
    assert [type(t).__name__ for t in pipeline.transforms][-1] == 'PackVolumeInputs'
    np.random.seed(0)
    for _ in range(5):
        packed = pipeline(dict(img_path=path, num_classes=4, case_id='case',
                               intensity='hu', intensity_properties=CT))
        assert packed['inputs'].shape == (1, 4, 16, 16)
        assert packed['data_samples'].gt_sem_seg.data.shape == (4, 16, 16)
        assert torch.isfinite(packed['inputs']).all()
    test_pipeline = Compose([dict(type='LoadVolume', native_label=True),
                             dict(type='NormalizeIntensity3D', mode='ct'),
                             dict(type='PackVolumeInputs')])
    packed = test_pipeline(dict(img_path=path, intensity_properties=CT))
    assert packed['inputs'].shape == (1, 6, 20, 20)

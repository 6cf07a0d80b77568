"""RandomRotateScale and RandomElasticDeformation: image and labels warped together."""
import copy

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmcv.transforms.utils import cache_random_params

from mmsam.datasets.transforms import RandomElasticDeformation, RandomRotateScale
from mmsam.registry import TRANSFORMS

INTENSITY = 50.  # the test image encodes the label: img = label * INTENSITY


def make_results(height=96, width=96, dtype=np.uint8, channels=3):
    """A slice with a disk (1), a rectangle (2) and a small disk (3) on background 0."""
    rows, cols = np.mgrid[0:height, 0:width]
    label = np.zeros((height, width), dtype=np.int64)
    label[(rows - 0.45 * height) ** 2 + (cols - 0.4 * width) ** 2 < (0.2 * height) ** 2] = 1
    label[int(0.6 * height):int(0.8 * height), int(0.55 * width):int(0.8 * width)] = 2
    label[(rows - 0.3 * height) ** 2 + (cols - 0.7 * width) ** 2 < (0.08 * height) ** 2] = 3
    img = np.repeat((label * INTENSITY).astype(np.float32)[..., None], channels, axis=-1)
    return dict(img=img, gt_seg_map=label.astype(dtype), seg_fields=['gt_seg_map'],
                img_shape=(height, width), ori_shape=(height, width))


def rotate(**kwargs):
    return RandomRotateScale(**{**dict(prob=1.), **kwargs})


def elastic(**kwargs):
    return RandomElasticDeformation(**{**dict(prob=1., alpha=300., sigma=10.), **kwargs})


ACTIVE = {
    'rotate_scale': lambda: rotate(rotate_range=(-30, 30), scale_range=(0.8, 1.2)),
    'elastic': lambda: elastic(),
    'both_axes': lambda: rotate(rotate_range=(17, 17), scale_range=(1.1, 1.1)),
}


@pytest.mark.parametrize('cls', [RandomRotateScale, RandomElasticDeformation])
def test_prob_zero_is_identity(cls):
    np.random.seed(0)
    results = make_results()
    expected = copy.deepcopy(results)
    out = cls(prob=0.)(results)
    np.testing.assert_array_equal(out['img'], expected['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], expected['gt_seg_map'])


@pytest.mark.parametrize('name', sorted(ACTIVE))
def test_prob_one_changes_image(name):
    np.random.seed(1)
    results = make_results()
    original = results['img'].copy()
    out = ACTIVE[name]()(results)
    assert not np.array_equal(out['img'], original)


@pytest.mark.parametrize('name', sorted(ACTIVE))
@pytest.mark.parametrize('dtype', [np.uint8, np.int64])
def test_labels_keep_values_dtype_and_shapes(name, dtype):
    np.random.seed(2)
    transform = ACTIVE[name]()
    for height, width in [(96, 96), (64, 112)]:
        results = make_results(height, width, dtype=dtype)
        values = set(np.unique(results['gt_seg_map']).tolist())
        out = transform(results)
        assert out['img'].shape == (height, width, 3) and out['img'].dtype == np.float32
        assert out['gt_seg_map'].shape == (height, width)
        assert out['gt_seg_map'].dtype == dtype
        # Nearest-neighbour only: no interpolated class ids (border fill is background 0).
        assert set(np.unique(out['gt_seg_map']).tolist()) <= values | {0}


def test_bool_mask_keeps_dtype():
    np.random.seed(3)
    results = make_results()
    results['gt_seg_map'] = results['gt_seg_map'] == 1
    out = rotate(rotate_range=(30, 30))(results)
    assert out['gt_seg_map'].dtype == np.bool_ and out['gt_seg_map'].any()


@pytest.mark.parametrize('name', sorted(ACTIVE))
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_image_and_label_move_together(name, seed):
    np.random.seed(seed)
    out = ACTIVE[name]()(make_results())
    # Bilinear blending only changes pixels next to a label boundary.
    decoded = np.rint(out['img'][..., 0] / INTENSITY).astype(np.int64)
    agreement = (decoded == out['gt_seg_map']).mean()
    assert agreement > 0.95, agreement
    # Every channel is warped the same way.
    np.testing.assert_allclose(out['img'][..., 1], out['img'][..., 0])
    np.testing.assert_allclose(out['img'][..., 2], out['img'][..., 0])


def test_extra_seg_fields_move_with_gt_seg_map():
    np.random.seed(4)
    results = make_results()
    results['gt_edge_map'] = results['gt_seg_map'].copy()
    results['seg_fields'].append('gt_edge_map')
    for transform in (rotate(rotate_range=(20, 40)), elastic()):
        out = transform(copy.deepcopy(results))
        np.testing.assert_array_equal(out['gt_edge_map'], out['gt_seg_map'])
        assert not np.array_equal(out['gt_seg_map'], results['gt_seg_map'])


@pytest.mark.parametrize('size', [10, 11, 48])
def test_rotation_by_90_is_rot90(size):
    """A positive angle turns the content counter-clockwise as displayed, like np.rot90."""
    rng = np.random.default_rng(size)
    label = rng.integers(0, 5, (size, size)).astype(np.uint8)
    img = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    for angle, k in [(90, 1), (-90, -1), (180, 2)]:
        results = dict(img=img.copy(), gt_seg_map=label.copy(), seg_fields=['gt_seg_map'])
        out = rotate(rotate_range=(angle, angle), scale_range=(1, 1))(results)
        np.testing.assert_array_equal(out['gt_seg_map'], np.rot90(label, k))
        # Away from the borders, where bilinear weights could touch the fill value.
        np.testing.assert_allclose(out['img'][1:-1, 1:-1], np.rot90(img, k)[1:-1, 1:-1],
                                   atol=1e-3)


def test_small_rotation_direction():
    """A point right of the centre moves up (row decreases) under +angle: counter-clockwise."""
    label = np.zeros((65, 65), np.uint8)
    label[31:34, 50:53] = 1  # centred on (row 32, col 51), right of the centre (32, 32)
    out = rotate(rotate_range=(30, 30), scale_range=(1, 1))(
        dict(img=label[..., None] * np.ones(3, np.float32), gt_seg_map=label,
             seg_fields=['gt_seg_map']))
    rows, cols = np.nonzero(out['gt_seg_map'])
    theta = np.deg2rad(30)
    assert rows.mean() == pytest.approx(32 - 19 * np.sin(theta), abs=0.5)
    assert cols.mean() == pytest.approx(32 + 19 * np.cos(theta), abs=0.5)


@pytest.mark.parametrize('scale', [0.8, 1.25, 1.5])
def test_scale_changes_area_by_scale_squared(scale):
    results = make_results(128, 128)
    area = (results['gt_seg_map'] == 1).sum()
    out = rotate(rotate_range=(0, 0), scale_range=(scale, scale))(results)
    ratio = (out['gt_seg_map'] == 1).sum() / area
    assert ratio == pytest.approx(scale ** 2, rel=0.05)


def test_scale_keeps_image_centre_fixed():
    label = np.zeros((65, 65), np.uint8)
    label[28:37, 28:37] = 1
    out = rotate(rotate_range=(0, 0), scale_range=(2, 2))(
        dict(img=label[..., None] * np.ones(3, np.float32), gt_seg_map=label,
             seg_fields=['gt_seg_map']))
    rows, cols = np.nonzero(out['gt_seg_map'])
    assert rows.mean() == pytest.approx(32) and cols.mean() == pytest.approx(32)


def test_elastic_alpha_zero_is_identity():
    np.random.seed(5)
    results = make_results()
    expected = copy.deepcopy(results)
    out = elastic(alpha=0.)(results)
    np.testing.assert_array_equal(out['img'], expected['img'])
    np.testing.assert_array_equal(out['gt_seg_map'], expected['gt_seg_map'])


@pytest.mark.parametrize('seed', range(5))
def test_elastic_roughly_keeps_object_area(seed):
    """A moderate field (~1.6 px displacement) on a 224 px slice, H-SAM's Synapse size."""
    np.random.seed(seed)
    results = make_results(224, 224)
    before = copy.deepcopy(results['gt_seg_map'])
    out = elastic(alpha=100., sigma=(10., 13.))(results)
    assert not np.array_equal(out['gt_seg_map'], before)
    for cls_id in (1, 2):
        ratio = (out['gt_seg_map'] == cls_id).sum() / (before == cls_id).sum()
        assert abs(ratio - 1) < 0.15, (cls_id, ratio)


def test_elastic_displacement_size_matches_documented_rule():
    """Per-axis displacement std ~= 0.16 * alpha / sigma pixels, as the docstring says."""
    np.random.seed(6)
    transform = elastic(alpha=400., sigma=10.)
    dx, dy, _ = transform._sample((256, 256))  # (no affine part: None)
    expected = 400. / (2 * np.sqrt(3 * np.pi) * 10.)
    for field in (dx, dy):
        assert field.std() == pytest.approx(expected, rel=0.25)


def test_border_values_fill_every_channel():
    np.random.seed(7)
    results = make_results(64, 64)
    out = rotate(rotate_range=(45, 45), scale_range=(1, 1), img_border_value=7.,
                 seg_border_value=255)(results)
    # The corners of a 45-degree turn come from outside the slice.
    np.testing.assert_array_equal(out['img'][0, 0], [7., 7., 7.])
    assert out['gt_seg_map'][0, 0] == 255 and out['gt_seg_map'][32, 32] != 255


@pytest.mark.parametrize('cls', [RandomRotateScale, RandomElasticDeformation])
def test_seeded_randomness_is_reproducible(cls):
    outs = []
    for _ in range(2):
        np.random.seed(8)
        # Fixed strengths, so every applied warp visibly changes the labels.
        transform = (rotate(prob=0.5, rotate_range=(20, 30)) if cls is RandomRotateScale else
                     elastic(prob=0.5, alpha=300., sigma=10.))
        outs.append([transform(make_results())['gt_seg_map'] for _ in range(10)])
    for first, second in zip(*outs):
        np.testing.assert_array_equal(first, second)
    # With prob=0.5, ten draws both warp and keep some samples.
    original = make_results()['gt_seg_map']
    changed = [not np.array_equal(o, original) for o in outs[0]]
    assert any(changed) and not all(changed)


@pytest.mark.parametrize('cls', [RandomRotateScale, RandomElasticDeformation])
def test_cache_random_params_repeats_the_draw(cls):
    np.random.seed(9)
    transform = cls(prob=1.)
    with cache_random_params(transform):
        first = transform(make_results())['gt_seg_map']
        second = transform(make_results())['gt_seg_map']
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize('cls, kwargs, name', [
    (RandomRotateScale, dict(prob=1.5), 'prob'),
    (RandomRotateScale, dict(prob=-0.1), 'prob'),
    (RandomRotateScale, dict(rotate_range=(20, -20)), 'rotate_range'),
    (RandomRotateScale, dict(rotate_range=20), 'rotate_range'),
    (RandomRotateScale, dict(scale_range=(1.1, 0.9)), 'scale_range'),
    (RandomRotateScale, dict(scale_range=(0., 1.)), 'scale_range'),
    (RandomRotateScale, dict(img_border_value=(0, 0, 0)), 'img_border_value'),
    (RandomElasticDeformation, dict(prob=2), 'prob'),
    (RandomElasticDeformation, dict(alpha=(10., 1.)), 'alpha'),
    (RandomElasticDeformation, dict(alpha=-1.), 'alpha'),
    (RandomElasticDeformation, dict(sigma=-3.), 'sigma'),
    (RandomElasticDeformation, dict(sigma=(5., 2.)), 'sigma'),
    (RandomElasticDeformation, dict(sigma=0.), 'sigma'),
    (RandomElasticDeformation, dict(seg_border_value='bg'), 'seg_border_value'),
])
def test_bad_arguments_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def test_misaligned_seg_map_raises():
    results = make_results()
    results['gt_seg_map'] = results['gt_seg_map'][:-1]
    with pytest.raises(ValueError, match='gt_seg_map'):
        rotate()(results)


def test_build_from_config_and_pack():
    rot = TRANSFORMS.build(dict(type='RandomRotateScale', prob=1., rotate_range=(-10, 10)))
    ela = TRANSFORMS.build(dict(type='RandomElasticDeformation', prob=1., alpha=300., sigma=10.))
    assert isinstance(rot, RandomRotateScale) and rot.rotate_range == (-10., 10.)
    assert isinstance(ela, RandomElasticDeformation) and ela.sigma == (10., 10.)
    assert 'RandomRotateScale' in repr(rot) and 'alpha' in repr(ela)
    # The augmentations sit between loading and mmseg's packer, found by name under mmsam.
    pipeline = Compose([rot, ela, TRANSFORMS.build(dict(type='PackSegInputs'))])
    np.random.seed(10)
    packed = pipeline(make_results(64, 80))
    assert tuple(packed['inputs'].shape) == (3, 64, 80)
    label = packed['data_samples'].gt_sem_seg.data[0].numpy()
    # the image (label * INTENSITY before augmenting) and the label moved together: they
    # still agree almost everywhere (interpolation blurs only the edges), every class is
    # still there and none is invented (nearest for labels)
    image_class = np.rint(packed['inputs'].float().numpy() / INTENSITY)
    assert all((image_class[c] == label).mean() > 0.95 for c in range(3))
    assert set(np.unique(label).tolist()) == {0, 1, 2, 3}

"""The official SAMed / H-SAM augmentation branches as registered transforms."""
import numpy as np
import pytest

from mmsam.registry import TRANSFORMS


def _results(size=32, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.random((size, size, 3)).astype(np.float32) * 255
    label = np.zeros((size, size), np.uint8)
    label[4:12, 6:20] = 1
    label[20:28, 10:14] = 2
    return dict(img=img, gt_seg_map=label, seg_fields=['gt_seg_map'], img_shape=(size, size))


def test_cascade_branch_frequencies_match_the_official_if_elif_chain():
    cascade = TRANSFORMS.build(dict(
        type='RandomCascade', probs=[0.45, 0.75, 0.85],
        transforms=[dict(type='RandomRot90Flip')] * 3))
    np.random.seed(0)
    counts = np.bincount([4 if (i := cascade._choose()) is None else i
                          for _ in range(20000)], minlength=5)
    # official: r() > 0.55 (45%), elif r() > 0.25 (41.25%), elif r() > 0.15 (11.69%), else 2.06%
    np.testing.assert_allclose(counts[[0, 1, 2, 4]] / 20000, [0.45, 0.4125, 0.116875, 0.020625],
                               atol=0.01)
    with pytest.raises(ValueError, match='one prob per transform'):
        TRANSFORMS.build(dict(type='RandomCascade', probs=[0.5, 0.5],
                              transforms=[dict(type='RandomRot90Flip')]))


def test_rot90_flip_is_one_of_the_four_reflections_of_the_square():
    np.random.seed(1)
    seen = set()
    for _ in range(60):
        results = _results()
        img, label = results['img'].copy(), results['gt_seg_map'].copy()
        out = TRANSFORMS.build(dict(type='RandomRot90Flip'))(results)
        matches = [(k, axis) for k in range(4) for axis in range(2)
                   if np.array_equal(out['img'], np.flip(np.rot90(img, k), axis))]
        assert matches, 'not a symmetry'
        k, axis = matches[0]
        assert np.array_equal(out['gt_seg_map'], np.flip(np.rot90(label, k), axis))
        seen.add(tuple(out['img'][0, :2, 0]))
        assert not np.array_equal(out['img'], img)  # the flip always happens
    reflections = {tuple(t[0, :2, 0]) for t in (img.transpose(1, 0, 2), img[::-1], img[:, ::-1],
                                                np.rot90(img, 2).transpose(1, 0, 2))}
    assert seen == reflections  # as the official code: flip after rot90 = a reflection


def test_crop_zoom_enlarges_a_window_of_20_to_80_percent():
    transform = TRANSFORMS.build(dict(type='RandomCropZoom', crop_ratio=(0.2, 0.8)))
    np.random.seed(2)
    for _ in range(20):
        results = _results(size=40)
        label = results['gt_seg_map'].copy()
        np.random.seed(np.random.randint(1 << 30))
        state = np.random.get_state()
        top, left, ch, cw = transform._sample.__wrapped__(transform, 40, 40)
        np.random.set_state(state)
        out = transform(results)
        assert 8 <= ch <= 32 and ch == cw  # one ratio for both sides
        assert out['img'].shape == (40, 40, 3) and out['gt_seg_map'].shape == (40, 40)
        window = label[top:top + ch, left:left + cw]
        # nearest: every output class id comes from the window, and the share is kept
        assert set(np.unique(out['gt_seg_map'])) <= set(np.unique(window))
        for cls in (1, 2):
            assert abs((out['gt_seg_map'] == cls).mean() - (window == cls).mean()) < 0.08


def test_elastic_with_only_the_affine_part_is_an_affine_warp():
    """alpha = 0 leaves the official random affine: a coordinate ramp stays a plane."""
    size = 64
    ramp = np.tile(np.arange(size, dtype=np.float32), (size, 1))
    results = dict(img=np.stack([ramp] * 3, -1), gt_seg_map=np.zeros((size, size), np.uint8),
                   seg_fields=['gt_seg_map'])
    transform = TRANSFORMS.build(dict(type='RandomElasticDeformation', prob=1.0, alpha=0.0,
                                      sigma=0.08, alpha_affine=0.08, relative_to_width=True))
    np.random.seed(3)
    out = transform(results)['img'][..., 0]
    rows, cols = np.mgrid[16:48, 16:48]  # interior, away from the filled border
    design = np.stack([cols.ravel(), rows.ravel(), np.ones(rows.size)], 1)
    coef, *_ = np.linalg.lstsq(design, out[16:48, 16:48].ravel(), rcond=None)
    residual = out[16:48, 16:48].ravel() - design @ coef
    assert np.abs(residual).max() < 1e-2
    assert not np.allclose(coef, [1, 0, 0], atol=1e-3)  # it did move
    # relative magnitudes: alpha 2 W, sigma 0.08 W at W = 64
    field = transform._sample.__wrapped__(transform, (size, size))
    assert field[2] is not None and field[2].shape == (2, 3)

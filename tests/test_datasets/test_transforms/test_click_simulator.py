"""Tests of the simulated clicks on hand-made masks (issue 24's acceptance list)."""
import numpy as np
import pytest
from scipy import ndimage

from mmsam.datasets.transforms import BoxPromptFromAnnotation, ClickSimulator
from mmsam.datasets.transforms.click_simulator import (box_from_mask, largest_region_centre,
                                                       next_click)
from mmsam.registry import TRANSFORMS


def two_blobs():
    """(12, 14) gt: a 7x7 square (rows 2-8, cols 3-9; centre row 5, col 6) and a 3x3 one."""
    gt = np.zeros((12, 14), np.uint8)
    gt[2:9, 3:10] = 1
    gt[9:12, 11:14] = 1
    return gt


def test_first_click_is_the_centre_of_the_largest_false_negative():
    gt = two_blobs()
    point, label = next_click(np.zeros_like(gt), gt, rng=0)
    assert label == 1
    assert point.dtype == np.float32 and point.tolist() == [6.0, 5.0]  # (x, y)
    # the big blob found, the small one (3x3, touching the border) predicted: same click
    pred = np.zeros_like(gt)
    pred[9:12, 11:14] = 1
    assert next_click(pred, gt, rng=1)[0].tolist() == [6.0, 5.0]
    # the big blob mostly predicted: the largest false negative is now the small blob
    pred = gt.copy()
    pred[9:12, 11:14] = 0
    pred[2:9, 3:10] = 0
    pred[2:9, 3:9] = 1  # 7x1 column missed
    point, label = next_click(pred, gt, rng=0)
    assert label == 1 and gt[int(point[1]), int(point[0])] and not pred[int(point[1]),
                                                                         int(point[0])]
    assert point.tolist() == [12.0, 10.0]  # the 3x3 blob's centre, larger than the 7x1 column


def test_click_at_a_false_positive_is_negative():
    gt = two_blobs()
    pred = gt.copy()
    pred[0:5, 0:2] = 1  # 10 false-positive pixels, the only error
    point, label = next_click(pred, gt, rng=0)
    x, y = int(point[0]), int(point[1])
    assert label == 0 and pred[y, x] and not gt[y, x]
    # the larger error decides: 10 FP pixels against a 3x3 (9 px) false negative
    pred[9:12, 11:14] = 0
    assert next_click(pred, gt, rng=0)[1] == 0
    pred[0:5, 0:2] = 0
    pred[0:4, 0:2] = 1  # now 8 FP pixels: the 9 px false negative is larger
    point, label = next_click(pred, gt, rng=0)
    assert label == 1 and point.tolist() == [12.0, 10.0]


def test_no_error_gives_no_click_and_ignored_pixels_are_never_errors():
    gt = two_blobs()
    assert next_click(gt, gt, rng=0) is None
    pred = gt.copy()
    pred[0:3, 0:3] = 1
    valid = np.ones(gt.shape, bool)
    valid[0:3, 0:3] = False
    assert next_click(pred, gt, rng=0, valid=valid) is None


def test_3d_click_is_x_y_z_at_the_centre():
    gt = np.zeros((9, 8, 12), bool)
    gt[2:7, 1:6, 6:11] = True  # z 2-6, y 1-5, x 6-10: unique deepest voxel (4, 3, 8)
    point, label = next_click(np.zeros_like(gt), gt, rng=3)
    assert label == 1 and point.tolist() == [8.0, 3.0, 4.0]
    box = box_from_mask(gt)
    assert box.tolist() == [6, 1, 2, 10, 5, 6]  # (x0, y0, z0, x1, y1, z1)


def test_spacing_moves_the_centre():
    """One region: a tall 9x3 part and a wide 5x9 part. In pixels the wide part is deeper
    (3 against 2); with columns 3 mm wide the tall part is (5 mm against 3 mm)."""
    mask = np.zeros((16, 12), bool)
    mask[0:9, 0:3] = True
    mask[10:15, 0:9] = True
    mask[9, 0] = True  # joins them
    index, depth, size = largest_region_centre(mask, rng=0)
    assert 10 <= index[0] < 15 and depth == 3 and size == mask.sum()
    index, depth, _ = largest_region_centre(mask, rng=0, spacing=(1.0, 3.0))
    assert index[0] < 9 and depth == 5


def random_case(rng, ndim):
    shape = tuple(int(n) for n in rng.integers(5, 16, ndim))
    gt = ndimage.binary_opening(rng.random(shape) < 0.6)
    pred = gt ^ (rng.random(shape) < 0.15)
    return pred, gt


@pytest.mark.parametrize('ndim', [2, 3])
def test_clicks_never_fall_outside_the_image_and_sit_on_their_error(ndim):
    rng = np.random.default_rng(ndim)
    for seed in range(40):
        pred, gt = random_case(rng, ndim)
        click = next_click(pred, gt, rng=seed, spacing=tuple(rng.uniform(0.5, 3.0, ndim)))
        if click is None:
            continue
        point, label = click
        index = tuple(int(v) for v in point[::-1])
        assert np.all(point >= 0) and np.all(point[::-1] < np.array(gt.shape))
        assert np.array_equal(point, np.round(point))
        assert pred[index] != gt[index] and label == int(gt[index])
        if gt.any():
            box = box_from_mask(gt, jitter=6, rng=seed)
            top = np.array(gt.shape[::-1]) - 1
            assert np.all(box >= 0) and np.all(box[:ndim] <= box[ndim:])
            assert np.all(box[ndim:] <= top)


def test_ties_are_broken_by_the_seed():
    """Two equal false-negative squares, each with a 2x2 block of equally deep centres."""
    gt = np.zeros((10, 20), bool)
    gt[1:7, 1:7] = True
    gt[1:7, 12:18] = True
    clicks = {seed: next_click(np.zeros_like(gt), gt, rng=seed)[0].tolist()
              for seed in range(100)}
    assert all(next_click(np.zeros_like(gt), gt, rng=s)[0].tolist() == c
               for s, c in clicks.items())  # same seed, same click
    assert len({tuple(c) for c in clicks.values()}) == 8  # both squares, all 4 centres each
    assert {c[0] < 10 for c in clicks.values()} == {True, False}


def simulate(simulator, gt, predictions, **extra):
    """Run the transform as an interactive loop would: initial prompt, then one call per
    previous prediction."""
    results = simulator(dict(dict(gt_seg_map=gt, img_path='case_7.npz'), **extra))
    for pred in predictions:
        results = simulator(dict(results, prev_pred_seg_map=pred))
    return results


def test_transform_initial_box_then_corrections():
    gt = two_blobs()
    simulator = TRANSFORMS.build(dict(type='ClickSimulator', initial='box', seed=0))
    first = np.zeros_like(gt)
    first[2:9, 3:10] = 1  # the big blob found: the small one is missed
    second = gt.copy()
    second[0:5, 0:2] = 1  # then a false positive
    results = simulate(simulator, gt, [first, second, gt])
    np.testing.assert_array_equal(
        results['prompt_box'], BoxPromptFromAnnotation.box_of(gt))  # same box convention
    assert results['prompt_points'].dtype == np.float32
    assert len(results['prompt_points']) == 2
    assert results['prompt_points'][0].tolist() == [12.0, 10.0]
    assert results['prompt_point_labels'].tolist() == [1, 0]  # no click when it is right
    x, y = results['prompt_points'][1].astype(int)
    assert second[y, x] and not gt[y, x]
    np.testing.assert_array_equal(results['gt_seg_map'], gt)  # the label is not changed


def test_transform_initial_point_and_target_class():
    gt = two_blobs()
    gt[9:12, 11:14] = 2
    results = ClickSimulator(initial='point', seed=0)(dict(gt_seg_map=gt, img_path='a'))
    assert results['prompt_points'].tolist() == [[6.0, 5.0]]
    assert results['prompt_point_labels'].tolist() == [1]
    assert 'prompt_box' not in results
    results = ClickSimulator(initial='point', target_class=2, seed=0)(
        dict(gt_seg_map=gt, img_path='a'))
    assert results['prompt_points'].tolist() == [[12.0, 10.0]]
    gt3 = np.zeros((4, 6, 6), np.uint8)
    gt3[1:3, 2:5, 1:4] = 1
    results = ClickSimulator(initial='box', seed=0)(dict(gt_seg_map=gt3, case_id='v'))
    assert results['prompt_box'].tolist() == [1, 2, 1, 3, 4, 2]
    assert results['prompt_points'].shape == (0, 3)


def test_transform_is_seeded_per_sample_and_click():
    rng = np.random.default_rng(5)
    samples = []
    for k in range(6):
        pred, gt = random_case(rng, 2)
        samples.append((f'img_{k}.png', gt.astype(np.uint8), pred))

    def run(order, seed):
        simulator = ClickSimulator(initial='box', box_jitter=3, seed=seed)
        out = {}
        for k in order:
            path, gt, pred = samples[k]
            results = simulate(simulator, gt, [pred], img_path=path) if gt.any() else None
            out[k] = None if results is None else (results['prompt_box'].tolist(),
                                                   results['prompt_points'].tolist())
        return out

    forward = run(range(6), seed=11)
    assert run(reversed(range(6)), seed=11) == forward  # order does not matter
    assert run(range(6), seed=12) != forward  # the seed does
    np.random.seed(0)  # seed=None: numpy's global generator, as mmengine seeds it
    first = run(range(6), seed=None)
    np.random.seed(0)
    assert run(range(6), seed=None) == first


def test_transform_bad_input_is_named():
    gt = np.zeros((6, 6), np.uint8)
    with pytest.raises(ValueError, match=r'empty\.png.*absent'):
        ClickSimulator(seed=0)(dict(gt_seg_map=gt, img_path='empty.png'))
    results = ClickSimulator(seed=0, empty='no_prompt')(dict(gt_seg_map=gt, img_path='e'))
    assert results['prompt_points'].shape == (0, 2) and 'prompt_box' not in results
    pred = np.zeros_like(gt)
    pred[1:3, 1:3] = 1
    results = ClickSimulator(seed=0, empty='no_prompt')(dict(results, prev_pred_seg_map=pred))
    assert results['prompt_point_labels'].tolist() == [0]
    with pytest.raises(ValueError, match='prev_pred_seg_map has shape'):
        ClickSimulator(seed=0)(dict(gt_seg_map=two_blobs(), img_path='a',
                                    prev_pred_seg_map=np.zeros((3, 3))))
    with pytest.raises(ValueError, match='initial'):
        ClickSimulator(initial='scribble')
    with pytest.raises(ValueError, match='spacing'):
        ClickSimulator(use_spacing=True, seed=0)(dict(gt_seg_map=two_blobs(), img_path='a'))


def test_regions_are_face_connected():
    """Two 3x3 squares touching at a corner are two regions (9 px each), so a separate 4x4
    square (16 px) is the largest; with 8-connectivity they would be one of 18 px."""
    gt = np.zeros((12, 12), bool)
    gt[0:3, 0:3] = True
    gt[3:6, 3:6] = True
    gt[7:11, 7:11] = True
    point, label = next_click(np.zeros_like(gt), gt, rng=0)
    assert label == 1 and 7 <= point[0] <= 10 and 7 <= point[1] <= 10


def test_prompts_pack_into_the_data_sample_metainfo():
    from mmcv.transforms import Compose
    gt = two_blobs()
    pipeline = Compose([
        dict(type='ClickSimulator', initial='point', seed=0),
        dict(type='PackSegInputs', meta_keys=('img_path', 'img_shape', 'prompt_points',
                                              'prompt_point_labels'))])
    packed = pipeline(dict(img=np.zeros(gt.shape + (3,), np.float32), gt_seg_map=gt,
                           img_path='a.png', img_shape=gt.shape, seg_fields=['gt_seg_map']))
    sample = packed['data_samples']
    assert sample.prompt_points.tolist() == [[6.0, 5.0]]
    assert sample.prompt_point_labels.tolist() == [1]
    assert sample.gt_sem_seg.data.shape == (1,) + gt.shape

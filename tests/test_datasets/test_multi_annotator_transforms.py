import numpy as np
import pytest

from mmsam.datasets.synthetic import generate_synthetic_lesions
from mmsam.datasets.transforms import BoxPromptFromAnnotation, LoadMultiAnnotatorSample
from mmsam.registry import TRANSFORMS


def _sample(tmp_path, masks, image=None):
    path = str(tmp_path / 'sample.npz')
    image = np.random.default_rng(0).random(masks.shape[1:]) if image is None else image
    np.savez(path, image=image.astype(np.float32), masks=masks.astype(np.uint8))
    return LoadMultiAnnotatorSample()(dict(img_path=path))


def test_load_gives_three_channel_image_and_all_masks(tmp_path):
    masks = np.zeros((3, 8, 10), np.uint8)
    masks[1, 2:5, 3:7] = 1
    results = _sample(tmp_path, masks)
    assert results['img'].shape == (8, 10, 3) and results['img'].max() <= 255
    assert np.array_equal(results['gt_annotations'], masks)
    assert results['ori_shape'] == (8, 10)


def test_box_is_the_extremity_box_of_a_non_empty_annotation(tmp_path):
    masks = np.zeros((4, 16, 16), np.uint8)
    masks[1, 3:9, 2:12] = 1  # rows 3..8, cols 2..11
    masks[1, 10, 5] = 1      # an extremity below
    masks[3, 0:2, 0:2] = 1
    seen = set()
    for seed in range(20):
        out = BoxPromptFromAnnotation(seed=seed)(dict(_sample(tmp_path, masks)))
        seen.add(out['prompt_annotation'])
        expected = {1: [2, 3, 11, 10], 3: [0, 0, 1, 1]}[out['prompt_annotation']]
        assert out['prompt_box'].tolist() == expected
        assert np.array_equal(out['gt_seg_map'], masks[out['prompt_annotation']])
    assert seen == {1, 3}  # never an empty annotation, and both non-empty ones get picked


def test_seeded_choice_is_repeatable_per_sample(tmp_path):
    masks = np.ones((4, 6, 6), np.uint8)
    results = _sample(tmp_path, masks)
    picks = [BoxPromptFromAnnotation(seed=7)(dict(results))['prompt_annotation']
             for _ in range(5)]
    assert len(set(picks)) == 1


def test_jitter_moves_the_box_within_bounds(tmp_path):
    masks = np.zeros((1, 32, 32), np.uint8)
    masks[0, 10:20, 10:20] = 1
    results = _sample(tmp_path, masks)
    boxes = np.stack([BoxPromptFromAnnotation(jitter=3, seed=s)(dict(results))['prompt_box']
                      for s in range(30)])
    assert np.abs(boxes - [10, 10, 19, 19]).max() <= 3
    assert len({tuple(b) for b in boxes}) > 1
    assert (boxes >= 0).all() and (boxes <= 31).all()


def test_all_empty_annotations(tmp_path):
    results = _sample(tmp_path, np.zeros((4, 8, 12), np.uint8))
    out = BoxPromptFromAnnotation()(dict(results))
    assert out['prompt_annotation'] == -1
    assert out['prompt_box'].tolist() == [0, 0, 11, 7]
    assert not out['gt_seg_map'].any()
    with pytest.raises(ValueError, match='chosen annotation is empty'):
        BoxPromptFromAnnotation(empty='error')(dict(results))
    with pytest.raises(ValueError, match='empty must be'):
        BoxPromptFromAnnotation(empty='skip')


def test_any_reader_with_the_centre_box_for_an_empty_one(tmp_path):
    # The public pSAM recipe: any of the K readers is the target; an empty one gets the box
    # [int(0.25 W), int(0.25 H), int(0.75 W), int(0.75 H)].
    masks = np.zeros((4, 10, 14), np.uint8)
    masks[2, 1:4, 6:9] = 1
    results = _sample(tmp_path, masks)
    picks = {}
    for seed in range(40):
        out = BoxPromptFromAnnotation(seed=seed, readers='any', empty='centre')(dict(results))
        picks[out['prompt_annotation']] = out['prompt_box'].tolist()
        assert np.array_equal(out['gt_seg_map'], masks[out['prompt_annotation']])
    assert set(picks) == {0, 1, 2, 3}
    assert picks[2] == [6, 1, 8, 3]
    assert picks[0] == picks[1] == picks[3] == [3, 2, 10, 7]
    with pytest.raises(ValueError, match='readers must be'):
        BoxPromptFromAnnotation(readers='all')


def test_load_resize_to_brings_image_and_masks_to_the_size(tmp_path):
    masks = np.zeros((3, 8, 12), np.uint8)
    masks[0, 2:6, 3:9] = 1
    path = str(tmp_path / 'big.npz')
    image = np.tile(np.linspace(0, 1, 12, dtype=np.float32), (8, 1))
    np.savez(path, image=image, masks=masks)
    out = LoadMultiAnnotatorSample(resize_to=(4, 6))(dict(img_path=path))
    assert out['img'].shape == (4, 6, 3) and out['ori_shape'] == out['img_shape'] == (4, 6)
    assert out['gt_annotations'].shape == (3, 4, 6)
    # nearest sampling of a 2x downscale keeps the mask's block (rows 1-2, cols 2-4)
    assert out['gt_annotations'][0].nonzero()[0].tolist() == [1] * 3 + [2] * 3
    assert 0 <= out['img'].min() and out['img'].max() <= 255
    assert np.all(np.diff(out['img'][0, :, 0]) > 0)  # the ramp survives the bicubic resize
    with pytest.raises(ValueError, match='resize_to'):
        LoadMultiAnnotatorSample(resize_to=(0, 4))


def test_pipeline_packs_annotations_and_box(tmp_path):
    generate_synthetic_lesions(str(tmp_path / 'lesions'), num_train=3, num_val=1, num_test=1,
                               size=32)
    path = str(next((tmp_path / 'lesions' / 'samples').glob('*.npz')))
    pipeline = [TRANSFORMS.build(dict(type=t)) for t in
                ('LoadMultiAnnotatorSample', 'BoxPromptFromAnnotation',
                 'PackMultiAnnotatorInputs')]
    results = dict(img_path=path)
    for transform in pipeline:
        results = transform(results)
    sample = results['data_samples']
    assert results['inputs'].shape == (3, 32, 32)
    assert sample.gt_annotations.data.shape == (4, 32, 32)
    assert sample.gt_sem_seg.data.shape == (1, 32, 32)
    assert sample.prompt_box.shape == (4,)

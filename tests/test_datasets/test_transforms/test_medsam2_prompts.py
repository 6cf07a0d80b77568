"""SampleSliceSequence / VolumeOrganPrompts on hand-made volumes (MedSAM2's sampling rules)."""
import numpy as np
import pytest

from mmsam.datasets.transforms import (PackVolumeInputs, SampleSliceSequence,
                                       VolumeOrganPrompts)
from mmsam.datasets.transforms.volume_organ_prompts import organ_key_slice


def hand_made_volume():
    """(12, 16, 20) labels: organ 1 on slices 2..6 (a growing square), organ 2 on 5..9."""
    labels = np.zeros((12, 16, 20), np.uint8)
    for z in range(2, 7):  # organ 1: slice z covers rows 2..2+(z-1), cols 3..3+2(z-1)
        labels[z, 2:2 + z, 3:3 + 2 * z] = 1
    labels[5:10, 10:14, 12:18] = 2
    image = np.random.default_rng(0).normal(size=labels.shape).astype(np.float32)
    return dict(img=image, gt_seg_map=labels, seg_fields=['gt_seg_map'], img_path='case.npz',
                img_shape=labels.shape)


def brute_box(mask):
    pts = [(x, y) for y in range(mask.shape[0]) for x in range(mask.shape[1]) if mask[y, x]]
    xs, ys = zip(*pts)
    return [min(xs), min(ys), max(xs), max(ys)]


@pytest.mark.parametrize('key_position', ['first', 'random'])
def test_sequence_key_slice_and_box(key_position):
    volume = hand_made_volume()
    seen_starts, seen_organs = set(), set()
    for seed in range(60):
        np.random.seed(seed)
        out = SampleSliceSequence(num_frames=4, key_position=key_position)(
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in volume.items()})
        start, key, organ = out['slice_start'], out['key_slice'], out['prompt_label']
        assert out['img'].shape == (4, 16, 20) and out['gt_seg_map'].shape == (4, 16, 20)
        assert out['img_shape'] == (4, 16, 20)
        np.testing.assert_array_equal(out['img'], volume['img'][start:start + 4])
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      volume['gt_seg_map'][start:start + 4] == organ)
        assert out['gt_seg_map'].dtype == np.uint8 and set(np.unique(out['gt_seg_map'])) <= {0, 1}
        if key_position == 'first':
            assert key == 0
        # the key slice lies inside the organ's extent and the box is its GT box there
        assert out['gt_seg_map'][key].any()
        assert out['prompt_box'].tolist() == brute_box(out['gt_seg_map'][key])
        assert out['prompt_box'].dtype == np.float32
        seen_starts.add(start)
        seen_organs.add(organ)
    assert seen_organs == {1, 2}
    if key_position == 'first':  # first slices with foreground: 2..8 (start <= 12 - 4)
        assert seen_starts == set(range(2, 9))
    else:  # any window touching foreground: start 0..8
        assert seen_starts == set(range(0, 9))


def test_sequence_is_seeded():
    volume = hand_made_volume()

    def draw(seed):
        np.random.seed(seed)
        out = SampleSliceSequence(num_frames=4, key_position='random')(dict(volume))
        return out['slice_start'], out['key_slice'], out['prompt_label']

    assert draw(3) == draw(3)
    assert len({draw(s) for s in range(20)}) > 1


def test_sequence_packs_metainfo():
    np.random.seed(0)
    out = SampleSliceSequence(num_frames=4)(hand_made_volume())
    packed = PackVolumeInputs(meta_keys=('key_slice', 'prompt_box', 'prompt_label'))(out)
    assert tuple(packed['inputs'].shape) == (1, 4, 16, 20)
    assert tuple(packed['data_samples'].gt_sem_seg.data.shape) == (4, 16, 20)
    assert packed['data_samples'].key_slice == 0
    assert packed['data_samples'].prompt_box.tolist() == out['prompt_box'].tolist()


def test_sequence_errors_name_the_case():
    volume = hand_made_volume()
    with pytest.raises(ValueError, match=r'case\.npz.*organs \(7,\)'):
        SampleSliceSequence(num_frames=4, classes=[7])(dict(volume))
    with pytest.raises(ValueError, match=r'case\.npz has 12 slices, fewer than num_frames=13'):
        SampleSliceSequence(num_frames=13)(dict(volume))
    late = dict(volume, gt_seg_map=np.zeros_like(volume['gt_seg_map']))
    late['gt_seg_map'][10, 1, 1] = 1  # only in the last T-1 slices
    with pytest.raises(ValueError, match='no window of 4 slices'):
        SampleSliceSequence(num_frames=4)(late)
    np.random.seed(0)
    assert SampleSliceSequence(num_frames=4, key_position='random')(late)['key_slice'] >= 1
    with pytest.raises(ValueError, match='key_position'):
        SampleSliceSequence(key_position='middle')


def test_key_slice_rules_by_hand():
    volume = hand_made_volume()
    organ1 = volume['gt_seg_map'] == 1
    assert organ_key_slice(organ1, 'middle') == 4  # extent 2..6
    assert organ_key_slice(organ1, 'largest') == 6  # the square grows with z
    gap = np.zeros((9, 4, 4), bool)
    gap[[1, 2, 7], 1, 1] = True  # middle (1 + 7) // 2 = 4 is empty: nearest are 2 (and 7)
    assert organ_key_slice(gap, 'middle') == 2


def test_test_prompts_every_organ():
    volume = hand_made_volume()
    out = VolumeOrganPrompts()(dict(volume))
    assert out['prompt_labels'].tolist() == [1, 2]
    assert out['key_slices'].tolist() == [4, 7]
    labels = volume['gt_seg_map']
    for organ, key, box in zip(out['prompt_labels'], out['key_slices'], out['prompt_boxes']):
        assert labels[key][labels[key] == organ].size > 0
        assert box.tolist() == brute_box(labels[key] == organ)
    largest = VolumeOrganPrompts(key_slice='largest', classes=[2])(dict(volume))
    assert largest['prompt_labels'].tolist() == [2] and largest['key_slices'].tolist() == [5]


def test_test_prompts_shift_is_deterministic_and_bounded():
    volume = hand_made_volume()
    a = VolumeOrganPrompts(max_shift=3, seed=1)(dict(volume))['prompt_boxes']
    b = VolumeOrganPrompts(max_shift=3, seed=1)(dict(volume))['prompt_boxes']
    tight = VolumeOrganPrompts()(dict(volume))['prompt_boxes']
    np.testing.assert_array_equal(a, b)
    grow = np.concatenate([tight[:, :2] - a[:, :2], a[:, 2:] - tight[:, 2:]], axis=1)
    assert (grow >= 0).all() and (grow <= 3).all()
    assert (a[:, 2] <= 19).all() and (a[:, 3] <= 15).all() and (a >= 0).all()


def test_test_prompts_errors():
    volume = hand_made_volume()
    with pytest.raises(ValueError, match=r'case\.npz has no voxel of organ\(s\) \[3\]'):
        VolumeOrganPrompts(classes=[1, 3], require=True)(dict(volume))
    assert VolumeOrganPrompts(classes=[1, 3])(dict(volume))['prompt_labels'].tolist() == [1]
    with pytest.raises(ValueError, match='none of the organs'):
        VolumeOrganPrompts(classes=[5])(dict(volume))


def test_test_prompts_on_the_stored_grid_with_a_native_label(tmp_path):
    """A resampled case: the metric's native label stays, the boxes come from the stored one."""
    volume = hand_made_volume()
    path = tmp_path / 'case.npz'
    np.savez(path, image=volume['img'], label=volume['gt_seg_map'], spacing=np.ones(3))
    native = np.zeros((6, 8, 10), np.uint8)
    out = VolumeOrganPrompts()(dict(volume, gt_seg_map=native, img_path=str(path)))
    assert out['gt_seg_map'] is native
    assert out['key_slices'].tolist() == [4, 7]
    np.savez(path, image=volume['img'], label=native, spacing=np.ones(3))
    with pytest.raises(ValueError, match='re-run the converter'):
        VolumeOrganPrompts()(dict(volume, gt_seg_map=native, img_path=str(path)))

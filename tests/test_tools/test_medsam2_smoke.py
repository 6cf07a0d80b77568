"""The tiny MedSAM2 config runs as users run it: tools/train.py on sequences of slices with a
key-slice prompt, tools/test.py propagating one box per organ through whole volumes
(subprocesses, CPU, 2 iterations on one shrunk synthetic case)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import iter_options, synthetic_abdomen_options

pytestmark = pytest.mark.slow  # two tool subprocesses: 35 s on a quiet machine, 95 s loaded

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/medsam2/medsam2_hiera-tiny_synthetic-abdomen-3d.py'


def run(args, cwd):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc.stdout + proc.stderr


def test_medsam2_tiny_config_trains_and_tests(tmp_path):
    """Smoke check: 2 training iterations of 4-slice sequences, then the test propagates a GT
    box per organ through the 8-slice test volume and writes Dice per organ (nnU-Net's
    convention) and NSD; the values of a 2-iteration model are not checked (the transforms,
    the propagation and the metric have their own value tests)."""
    data_root, work_dir = tmp_path / 'data', tmp_path / 'work'
    options = synthetic_abdomen_options(data_root, batch_size=1) + [
        'train_dataloader.dataset.pipeline.1.num_frames=4',
        'test_dataloader.dataset.pipeline.1.classes=[5,7]']  # liver and aorta
    log = run([REPO / 'tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
               *options, *iter_options(2, 2)], cwd=tmp_path)
    assert 'Iter(train) [2/2]' in log
    run([REPO / 'tools/test.py', CONFIG, work_dir / 'iter_2.pth', '--work-dir', work_dir,
         '--cfg-options', *options], cwd=tmp_path)
    results = [p for p in work_dir.glob('*/*.json') if p.name != 'scalars.json']
    metrics = json.loads(sorted(results)[-1].read_text())
    for organ in ('liver', 'aorta'):
        assert 0 <= metrics[f'Dice.{organ}'] <= 100
        assert f'NSD.{organ}' in metrics or any(k.endswith(f'NSD.{organ}') for k in metrics)
    assert 'transunet.mDice' in metrics

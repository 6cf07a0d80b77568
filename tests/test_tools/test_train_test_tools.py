"""tools/train.py, tools/test.py and tools/dist_*.sh, run as a user runs them (subprocesses, CPU).

The runs use the demo config (a tiny SAM-architecture ViT with SAMed's head on the synthetic
abdomen), shrunk by ``--cfg-options`` to one training and one test case of 8 slices and switched
to an iteration-based loop, so each run is a few iterations. CUDA is hidden, so the CPU paths
(gloo, DDP without device ids, no AMP) are the ones tested on every machine.
"""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import iter_options, load_script, synthetic_abdomen_options

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """Where the runs generate (first run) and share the shrunk synthetic abdomen."""
    return tmp_path_factory.mktemp('synthetic_abdomen') / 'data'


def cpu_env(**extra):
    # One intra-op thread: on a busy machine torch's default thread pool makes these tiny runs
    # tens of times slower (threads spinning for cores another process holds).
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env.update(extra)
    env.pop('LOCAL_RANK', None)
    return env


def run(cmd, cwd=REPO, env=None, timeout=240):
    """Runs ``cmd``; fails the test with the end of its output if it exits non-zero."""
    proc = subprocess.run(cmd, cwd=cwd, env=env or cpu_env(), capture_output=True, text=True,
                          timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(map(str, cmd))} failed:\n{output[-6000:]}'
    return output


def train(work_dir, data_root, max_iters, checkpoint_interval, resume=None):
    cmd = [sys.executable, str(REPO / 'tools' / 'train.py'), str(CONFIG), '--work-dir',
           str(work_dir)]
    if resume is not None:
        cmd += ['--resume'] if resume == 'auto' else ['--resume', str(resume)]
    cmd += ['--cfg-options', *synthetic_abdomen_options(data_root),
            *iter_options(max_iters, checkpoint_interval)]
    return run(cmd)


def load_checkpoint_file(path):
    from mmsam.engine import allow_mmengine_checkpoints
    with allow_mmengine_checkpoints():
        return torch.load(path, map_location='cpu')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_train_then_test(data_root, tmp_path):
    work_dir = tmp_path / 'work'
    train(work_dir, data_root, max_iters=2, checkpoint_interval=2)
    ckpt = work_dir / 'iter_2.pth'
    checkpoint = load_checkpoint_file(ckpt)
    assert checkpoint['meta']['iter'] == 2
    assert any(k.startswith('backbone.') for k in checkpoint['state_dict'])

    # From another directory: the tools must not depend on the current directory.
    out = run([sys.executable, str(REPO / 'tools' / 'test.py'), str(CONFIG), str(ckpt),
               '--work-dir', str(work_dir), '--cfg-options', *synthetic_abdomen_options(data_root)],
              cwd=tmp_path)
    assert f'Load checkpoint from {ckpt}' in out
    # The test run's metrics are dumped as json in a timestamped folder of the work dir.
    results = [json.loads(p.read_text()) for p in work_dir.glob('*/*.json')]
    assert any('mDice' in r for r in results), out[-3000:]

    # A model built with other options than the checkpoint's: a clear error, no partial load.
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'), str(CONFIG), str(ckpt),
         '--work-dir', str(tmp_path / 'other'), '--cfg-options', *synthetic_abdomen_options(data_root),
         'model.decode_head.num_classes=5'], cwd=REPO, env=cpu_env(), capture_output=True,
        text=True, timeout=240)
    assert proc.returncode != 0
    assert f'checkpoint {ckpt} does not fit the model built from {CONFIG}' in proc.stderr
    assert 'size mismatch for decode_head.' in proc.stderr
    assert 'same --cfg-options' in proc.stderr


def test_resume_matches_uninterrupted_run(data_root, tmp_path):
    full, resumed = tmp_path / 'full', tmp_path / 'resumed'
    # 4 iterations with a checkpoint every 2: iter_2.pth and iter_4.pth.
    train(full, data_root, max_iters=4, checkpoint_interval=2)
    out = train(resumed, data_root, max_iters=4, checkpoint_interval=2,
                resume=full / 'iter_2.pth')
    assert 'resumed epoch: 0, iter: 2' in out

    expected = load_checkpoint_file(full / 'iter_4.pth')
    got = load_checkpoint_file(resumed / 'iter_4.pth')
    assert got['meta']['iter'] == 4
    assert expected['state_dict'].keys() == got['state_dict'].keys()
    for key, value in expected['state_dict'].items():
        assert torch.equal(value, got['state_dict'][key]), key
    # The optimizer state and learning rate continue too, not only the weights.
    for key, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(got['optimizer']['state'][key][name])), name
    assert expected['optimizer']['param_groups'][0]['lr'] == \
        got['optimizer']['param_groups'][0]['lr']
    # Had the resumed run silently started from scratch, its weights would differ.
    halfway = load_checkpoint_file(full / 'iter_2.pth')
    assert not all(torch.equal(v, halfway['state_dict'][k]) for k, v in got['state_dict'].items())

    # --resume without a value continues from the work dir's latest checkpoint.
    out = train(full, data_root, max_iters=5, checkpoint_interval=5, resume='auto')
    assert 'resumed epoch: 0, iter: 4' in out
    assert load_checkpoint_file(full / 'iter_5.pth')['meta']['iter'] == 5


def test_dist_train_and_test_on_cpu(data_root, tmp_path):
    work_dir = tmp_path / 'dist'
    env = cpu_env(PYTHON=sys.executable, PORT=str(free_port()))
    out = run(['bash', str(REPO / 'tools' / 'dist_train.sh'), str(CONFIG), '2', '--work-dir',
               str(work_dir), '--cfg-options', *synthetic_abdomen_options(data_root), *iter_options(2, 2)],
              cwd=tmp_path, env=env)
    assert "using the 'gloo' distributed backend" in out
    assert 'Distributed training: True' in out
    assert 'GPU number: 2' in out  # mmengine's name for the world size
    checkpoint = load_checkpoint_file(work_dir / 'iter_2.pth')
    # DDP wraps the model; the checkpoint still has the plain module's keys.
    assert not any(k.startswith('module.') for k in checkpoint['state_dict'])

    env['PORT'] = str(free_port())
    out = run(['bash', str(REPO / 'tools' / 'dist_test.sh'), str(CONFIG),
               str(work_dir / 'iter_2.pth'), '2', '--work-dir', str(work_dir / 'test'),
               '--cfg-options', *synthetic_abdomen_options(data_root)], cwd=tmp_path, env=env)
    # mmengine collects distributed results through files in ./.dist_test, here in tmp_path.
    assert 'Iter(test)' in out and 'mDice' in out


def test_default_work_dir_show_dir_and_out(data_root, tmp_path):
    # A config in tmp_path that inherits the demo, so ./work_dirs/<config name> is made there.
    config = tmp_path / 'my_tiny_cfg.py'
    config.write_text(f"_base_ = [{str(CONFIG)!r}]\n")
    run([sys.executable, str(REPO / 'tools' / 'train.py'), str(config), '--cfg-options',
         *synthetic_abdomen_options(data_root), *iter_options(2, 2)], cwd=tmp_path)
    work_dir = tmp_path / 'work_dirs' / 'my_tiny_cfg'
    assert (work_dir / 'iter_2.pth').is_file()

    show_dir, out_dir = tmp_path / 'show', tmp_path / 'out'
    run([sys.executable, str(REPO / 'tools' / 'test.py'), str(config),
         str(work_dir / 'iter_2.pth'), '--show-dir', str(show_dir), '--out', str(out_dir),
         '--cfg-options', *synthetic_abdomen_options(data_root), 'default_hooks.visualization.interval=1'],
        cwd=tmp_path)
    # Two labelled pictures of the test case (of 8 slices), named after case and slice,
    # ground truth and prediction side by side at >= 384 px per 128 px slice.
    pictures = sorted(show_dir.rglob('*.png'))
    assert len(pictures) == 2
    assert all(re.fullmatch(r'test_case0001_slice00[0-7]_0', p.stem) for p in pictures)
    assert cv2.imread(str(pictures[0])).shape[1] >= 2 * 384
    (volume,) = out_dir.glob('*.npz')
    assert np.load(volume)['pred'].shape == (8, 128, 128)


def test_amp_trains_and_tests_on_cpu(data_root, tmp_path):
    """--amp on a CPU-only machine, through mmsam's AmpOptimWrapper: bf16 autocast where the CPU
    runs bf16 natively (AMX, AVX512-BF16), float32 elsewhere (mmsam.engine.amp)."""
    work_dir = tmp_path / 'amp'
    out = run([sys.executable, str(REPO / 'tools' / 'train.py'), str(CONFIG), '--work-dir',
               str(work_dir), '--amp', '--cfg-options', *synthetic_abdomen_options(data_root),
               *iter_options(2, 2)])
    assert 'AmpOptimWrapper' in (work_dir / CONFIG.name).read_text()
    checkpoint = load_checkpoint_file(work_dir / 'iter_2.pth')
    assert checkpoint['meta']['iter'] == 2
    out = run([sys.executable, str(REPO / 'tools' / 'test.py'), str(CONFIG),
               str(work_dir / 'iter_2.pth'), '--work-dir', str(work_dir), '--amp',
               '--cfg-options', *synthetic_abdomen_options(data_root)])
    results = [json.loads(p.read_text()) for p in work_dir.glob('*/*.json')]
    assert any('mDice' in r for r in results), out[-3000:]


def test_missing_checkpoint_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / 'tools' / 'test.py'), str(CONFIG),
                           str(tmp_path / 'nope.pth')], cwd=REPO, env=cpu_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'nope.pth: no such file' in proc.stderr


def test_truncated_checkpoint_fails_clearly_and_leaves_no_work_dir(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={'w': torch.zeros(1000)}), good)
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    proc = subprocess.run([sys.executable, str(REPO / 'tools' / 'test.py'), str(CONFIG),
                           str(bad), '--work-dir', str(tmp_path / 'wd')], cwd=REPO,
                          env=cpu_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f'checkpoint {bad} cannot be loaded: it is truncated or damaged' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'wd').exists()


def load_tool(name):
    """tools/<name>.py as a module (tools/ is not a package)."""
    return load_script(f'tools/{name}.py')


def test_resume_argument(tmp_path, monkeypatch):
    from mmengine.config import Config
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args would set it for the whole session
    train_tool = load_tool('train')
    parser, _ = train_tool.parse_args([str(CONFIG)])

    def resolved(resume_arg, **cfg):
        cfg = Config(dict(work_dir=str(tmp_path), load_from='pretrained.pth', **cfg))
        train_tool.set_resume(cfg, resume_arg, parser)
        return cfg.resume, cfg.load_from

    assert train_tool.parse_args([str(CONFIG), '--resume'])[1].resume == 'auto'
    assert train_tool.parse_args([str(CONFIG)])[1].resume is None
    # Flag absent: the config decides.
    assert resolved(None) == (False, 'pretrained.pth')
    assert resolved(None, resume=True) == (True, 'pretrained.pth')
    # Auto with nothing to resume: start from the config's weights, not "resume" from them.
    assert resolved('auto') == (False, 'pretrained.pth')
    ckpt = tmp_path / 'iter_4.pth'
    torch.save(dict(state_dict={}), ckpt)  # intact (an empty file counts as damaged)
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    assert resolved('auto') == (True, str(ckpt))
    assert resolved(str(ckpt)) == (True, str(ckpt))
    with pytest.raises(SystemExit):
        resolved(str(tmp_path / 'missing.pth'))


def test_out_sets_output_dir_of_metrics_that_take_it(tmp_path):
    from mmengine.config import Config

    from mmsam.utils import register_all_modules
    register_all_modules()
    test_tool = load_tool('test')
    cfg = Config(dict(test_evaluator=[dict(type='IoUMetric'), dict(type='VolumeDiceHD95Metric')]))
    test_tool.set_output_dir(cfg, str(tmp_path))
    assert cfg.test_evaluator[0].output_dir == str(tmp_path)
    assert cfg.test_evaluator[1].output_dir == str(tmp_path)
    from mmengine.evaluator import BaseMetric

    class CountOnlyMetric(BaseMetric):
        def process(self, data_batch, data_samples):
            pass

        def compute_metrics(self, results):
            return {}

    with pytest.raises(RuntimeError, match='can save predictions'):
        test_tool.set_output_dir(Config(dict(test_evaluator=dict(type=CountOnlyMetric))),
                                 str(tmp_path))

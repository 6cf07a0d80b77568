"""Kill-and-resume: a training run SIGKILLed mid-validation (while an embedding-cache entry is
being written), while a checkpoint is being written and mid-iteration, then resumed with
``--resume`` each time (the last time after its newest checkpoint was truncated by hand),
ends with the weights, optimizer state and logged metrics of an uninterrupted run.

The runs are subprocesses of ``tools/train.py`` (deterministic, CPU, one thread) on the demo
config shrunk to one 8-slice training case: 6 iterations of batch 2 with a checkpoint every 2,
validation after iterations 3 and 6 (the best checkpoint, not a resume point, after each), and
the frozen encoder's embedding cache on (float32
storage, exact) in the interrupted chain but not in the reference run. The kill points are
``tests/data/kill_points.py``. The reference runs alongside the chain to save time.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmsam.datasets.synthetic.abdomen_generator import ensure_synthetic_abdomen
from mmsam.engine.checkpoint import (CorruptCheckpointError, allow_mmengine_checkpoints,
                                     load_checkpoint)

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'
HELPERS = REPO / 'tests' / 'data'
GENERATOR = dict(num_train_cases=1, num_test_cases=1, depth=8, size=128, seed=0)
# Logged values that are timings, not results.
TIMING_KEYS = {'time', 'data_time', 'eta', 'memory'}


def write_config(folder, cache):
    hooks = ["dict(type='KillPointHook')"]
    if cache:
        hooks.append("dict(type='EmbeddingCacheHook', storage_dtype='float32')")
    path = folder / ('cached.py' if cache else 'plain.py')
    # The demo's test pipeline (no augmentation) for training: the embedding cache only serves
    # pixel-deterministic pipelines.
    path.write_text(f"_base_ = [{str(CONFIG)!r}]\n"
                    "custom_imports = dict(imports=['kill_points'], allow_failed_imports=False)\n"
                    f"custom_hooks = [{', '.join(hooks)}]\n"
                    "train_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline}}))\n")
    return path


def options(data_root):
    opts = []
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        opts += [f'{loader}.dataset.data_root={data_root}',
                 *[f'{loader}.dataset.generator.{k}={v}' for k, v in GENERATOR.items()],
                 f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts + [
        'train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop', 'train_cfg.max_iters=6',
        'train_cfg.val_interval=3', 'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1', 'randomness.deterministic=True',
        'model.backbone.frozen=True']


def command(config, work_dir, data_root, resume):
    return [sys.executable, str(REPO / 'tools' / 'train.py'), str(config), '--work-dir',
            str(work_dir), *(['--resume'] if resume else []), '--cfg-options',
            *options(data_root)]


def env(kill=None):
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
                       MKL_NUM_THREADS='1')
    environment['PYTHONPATH'] = os.pathsep.join(
        [str(HELPERS), str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])])
    environment.pop('LOCAL_RANK', None)
    environment.pop('MMSAM_TEST_KILL', None)
    if kill is not None:
        environment['MMSAM_TEST_KILL'] = kill
    return environment


def run(cmd, kill=None):
    """Runs ``cmd``; with ``kill`` it must die of SIGKILL, otherwise succeed."""
    proc = subprocess.run(cmd, cwd=REPO, env=env(kill), capture_output=True, text=True,
                          timeout=300)
    output = proc.stdout + proc.stderr
    expected = -signal.SIGKILL if kill else 0
    assert proc.returncode == expected, f'{kill}: exit {proc.returncode}\n{output[-5000:]}'
    return output


def logged(work_dir):
    """{(step, key): value} of every run's scalars.json, later runs overriding earlier ones."""
    values = {}
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            step = record.pop('step')
            values.update({(step, k): v for k, v in record.items() if k not in TIMING_KEYS})
    return values


def load(path):
    with allow_mmengine_checkpoints(str(path)):
        return torch.load(path, map_location='cpu')


def temporaries(folder, pattern):
    return list(folder.glob(f'.{pattern}.tmp-*'))


def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path):
    data_root = tmp_path / 'data'
    ensure_synthetic_abdomen(str(data_root), **GENERATOR)  # once, before the parallel runs
    reference, chain = tmp_path / 'reference', tmp_path / 'chain'
    plain, cached = write_config(tmp_path, cache=False), write_config(tmp_path, cache=True)
    ref_proc = subprocess.Popen(command(plain, reference, data_root, resume=False), cwd=REPO,
                                env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    try:
        # 1. Killed mid-validation (after iteration 3), while the 2nd validation sample's
        #    cache entry is written (entries 1-6 are the training samples of iterations 1-3).
        run(command(cached, chain, data_root, resume=False), kill='cache_store:8')
        (cache_dir,) = (chain / 'embedding_cache').iterdir()
        assert len(list(cache_dir.glob('*.pt'))) == 7
        assert len(temporaries(cache_dir, '*.pt')) == 1  # the half-written entry
        assert (chain / 'iter_2.pth').is_file() and not (chain / 'iter_3.pth').exists()

        # 2. Resumed from iteration 2; killed while writing iter_4.pth.
        out = run(command(cached, chain, data_root, resume=True), kill='checkpoint:iter_4.pth')
        assert 'resumed epoch: 0, iter: 2' in out
        assert not (chain / 'iter_4.pth').exists()
        assert len(temporaries(chain, 'iter_4.pth')) == 1
        assert (chain / 'last_checkpoint').read_text().endswith('iter_2.pth')

        # 3. Resumed from iteration 2 again; killed in iteration 5.
        out = run(command(cached, chain, data_root, resume=True), kill='train_iter:5')
        assert 'resumed epoch: 0, iter: 2' in out
        assert not temporaries(chain, '*.pth')  # the killed write's leftover is removed
        assert (chain / 'last_checkpoint').read_text().endswith('iter_4.pth')

        # 4. The newest checkpoint truncated by hand: loading it names it and the newest
        #    intact one; --resume skips it with a warning and goes back to iteration 2.
        newest = chain / 'iter_4.pth'
        newest.write_bytes(newest.read_bytes()[:newest.stat().st_size // 3])
        with pytest.raises(CorruptCheckpointError) as error:
            load_checkpoint(torch.nn.Linear(1, 1), str(newest))
        assert f'checkpoint {newest} cannot be loaded' in str(error.value)
        assert f'newest intact checkpoint there is {chain / "iter_2.pth"}' in str(error.value)
        out = run(command(cached, chain, data_root, resume=True))
        assert f'skipping damaged checkpoint(s) {newest}' in out
        assert 'resumed epoch: 0, iter: 2' in out
        assert 'EmbeddingCacheHook: caching image embeddings for train' in out
    finally:
        ref_out, _ = ref_proc.communicate(timeout=300)
    assert ref_proc.returncode == 0, ref_out[-5000:]

    expected, got = load(reference / 'iter_6.pth'), load(chain / 'iter_6.pth')
    assert got['meta']['iter'] == expected['meta']['iter'] == 6
    assert expected['state_dict'].keys() == got['state_dict'].keys()
    for key, value in expected['state_dict'].items():
        assert torch.equal(value, got['state_dict'][key]), key
    assert expected['optimizer']['state'].keys() == got['optimizer']['state'].keys()
    for key, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(got['optimizer']['state'][key][name])), name
    assert expected['optimizer']['param_groups'] == got['optimizer']['param_groups']
    assert expected['param_schedulers'] == got['param_schedulers']
    # Logged losses, learning rates and validation metrics of every iteration.
    ref_log, chain_log = logged(reference), logged(chain)
    assert {k for _, k in ref_log} >= {'loss', 'lr', 'mDice'}
    assert sorted({s for s, k in ref_log if k == 'mDice'}) == [3, 6]
    assert chain_log == ref_log

"""Distributed training on CPU equals one process, and fails loudly when a rank dies.

A 2-process gloo run (torchrun, per-rank batch B) and a 1-process run (batch 2B) see the same
global batches (mmengine's DefaultSampler gives rank r the indices r, r + 2, ... of one
permutation), so with per-sample mean losses DDP's averaged gradients equal the single
process's: per-iteration losses (mean over ranks) and final weights agree to float tolerance.
Checked for one config of each family, trained in one driver process (or torchrun job) each
way (``tests/data/dist_equivalence.py``): SAMed's prompt-free head (tiny demo, without
augmentation), the multi-hypothesis SAM-MCL head (box prompts seeded per sample, every reader as
target) and MaskSAM's tiny 3D model (patches as large as the shrunk volumes: the crop draws
nothing). Random draws would follow each process's own sample order. SGD replaces the configs'
Adam(W) so that the comparison is linear in the gradients (Adam's first step divides each
gradient by its own magnitude, which turns float noise of near-zero gradients into full steps).

Equality needs losses that are means over samples (or pixels), or sums made global:
SAMed's and H-SAM's ``MultiClassDiceLoss`` (TransUNet's form) is one Dice over all pixels of
the batch, and under DDP it all-reduces its sums so that 2 x B images train like 1 x 2B (the
official SAMed code computes it over the whole batch with ``nn.DataParallel``). The SAMed run
keeps the config's full loss (cross-entropy + Dice); without the all-reduce its per-iteration
losses were 0.2-0.8 % apart from one process.

The test metrics of the multi-hypothesis run come from 5 test images on 2 ranks: the sampler
pads rank 1 with a repeated image, which mmengine's result collection must drop; they equal
the single process's. A rank SIGKILLed mid-training makes the job end with torchrun's error
naming the failed rank, well within the test's timeout (no hang).
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / 'tests' / 'data' / 'dist_equivalence.py'
HELPERS = REPO / 'tests' / 'data'
SAMED = REPO / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'
MCL = REPO / 'tests' / 'data' / 'configs' / 'sam-mcl_synthetic-lesion_random-weights.py'
MASKSAM = REPO / 'configs' / 'masksam' / 'masksam_vit-tiny_synthetic-abdomen-3d.py'
SGD = {'_delete_': True, 'type': 'SGD', 'lr': 0.01, 'momentum': 0.9}


def loaders(options, batch, **dataset):
    out = {}
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        out.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False,
                    **{f'{loader}.dataset.{k}': v for k, v in dataset.items()}})
    out['train_dataloader.batch_size'] = batch
    out.update(options)
    return out


def specs(tmp_path, per_rank):
    """The three runs, with a per-process training batch of ``per_rank`` (global 2, 4, 2)."""
    abdomen = {'generator.num_train_cases': 1, 'generator.num_test_cases': 1}
    common = {'optim_wrapper.optimizer': SGD, 'randomness.seed': 0,
              'randomness.deterministic': True, 'default_hooks.logger.interval': 1,
              'default_hooks.checkpoint.interval': 1000, 'default_hooks.checkpoint.save_last':
              False, 'visualizer.vis_backends': [dict(type='LocalVisBackend')]}
    iters = {'train_cfg': {'_delete_': True, 'type': 'IterBasedTrainLoop', 'max_iters': 3,
                           'val_interval': 1000}, 'param_scheduler': []}
    return [
        # The config's full loss: cross-entropy (a pixel mean) + MultiClassDiceLoss (global
        # batch sums, all-reduced under DDP).
        dict(name='samed', config=str(SAMED), options=loaders(
            {**common, **iters,
             # no augmentation: its draws would follow each process's own sample order
             'train_dataloader.dataset.pipeline': [dict(type='LoadNpzSlice'),
                                                   dict(type='PackSegInputs')]},
             2 * per_rank, data_root=str(tmp_path / 'abdomen'),
            **{**abdomen, 'generator.depth': 8})),
        dict(name='mcl', config=str(MCL), test=True, options=loaders(
            # Seeded per sample: the box's reader and jitter; every reader as the target (the
            # default draws one per step from the process's generator, in its sample order).
            {**common, **iters, 'train_dataloader.dataset.pipeline.1.seed': 0,
             'model.decode_head.train_target': 'all_annotations',
             'test_dataloader.batch_size': 2, 'custom_hooks': []}, 2 * per_rank,
            data_root=str(tmp_path / 'lesions'), **{'generator.num_train': 8,
                                                    'generator.num_val': 2,
                                                    'generator.num_test': 5})),
        # Patches of 8 frames: the whole shrunk (8, 64, 64) volume, so the crop draws nothing.
        dict(name='masksam', config=str(MASKSAM), options=loaders(
            {**common, 'train_cfg.max_epochs': 1, 'param_scheduler': [],
             'train_dataloader.dataset.samples_per_epoch': 4,
             'train_dataloader.dataset.pipeline.2.patch_size': (8, 64, 64),
             'model.backbone.num_frames': 8, 'model.neck.num_frames': 8,
             'model.decode_head.num_frames': 8}, per_rank,
            data_root=str(tmp_path / 'abdomen3d'),
            **{**abdomen, 'generator.num_train_cases': 2, 'generator.depth': 8,
               'generator.size': 64})),
    ]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def env(**extra):
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
                       MKL_NUM_THREADS='1')
    environment['PYTHONPATH'] = os.pathsep.join(
        [str(HELPERS), str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])])
    for key in ('LOCAL_RANK', 'RANK', 'WORLD_SIZE', 'MMSAM_TEST_KILL'):
        environment.pop(key, None)
    environment.update(extra)
    return environment


def torchrun(nproc, *args):
    return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
            '--master_addr=127.0.0.1', f'--master_port={free_port()}', *map(str, args)]


def launch(cmd):
    return subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=500):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-6000:]
    return out


def prepare_data(tmp_path):
    """Generate the shrunk data sets once, before the parallel runs read them."""
    from mmsam.datasets.synthetic.abdomen_generator import ensure_synthetic_abdomen
    from mmsam.registry import DATASETS
    from mmengine.config import Config
    for spec in specs(tmp_path, 1):
        cfg = Config.fromfile(spec['config'])
        cfg.merge_from_dict(spec['options'])
        dataset = cfg.train_dataloader.dataset
        if spec['name'] == 'mcl':
            DATASETS.build(dict(dataset, pipeline=[]))
        else:
            ensure_synthetic_abdomen(dataset.data_root, **dataset.generator)


def test_two_gloo_processes_equal_one_process(tmp_path):
    prepare_data(tmp_path)
    single, dist = tmp_path / 'single', tmp_path / 'dist'
    for folder, per_rank in ((single, 2), (dist, 1)):
        folder.mkdir()
        (folder / 'spec.json').write_text(json.dumps(specs(tmp_path, per_rank)))
    procs = [launch([sys.executable, str(DRIVER), str(single), str(single / 'spec.json')]),
             launch(torchrun(2, DRIVER, dist, dist / 'spec.json'))]
    outputs = [finish(p) for p in procs]
    assert "using the 'gloo' distributed backend" in outputs[1]

    for name, num_iters in (('samed', 3), ('mcl', 3), ('masksam', 2)):
        one = json.loads((single / f'{name}.rank0.json').read_text())
        ranks = [json.loads((dist / f'{name}.rank{r}.json').read_text()) for r in (0, 1)]
        assert len(one['losses']) == len(ranks[0]['losses']) == num_iters, name
        mean = [sum(pair) / 2 for pair in zip(ranks[0]['losses'], ranks[1]['losses'])]
        assert mean == pytest.approx(one['losses'], rel=1e-5, abs=1e-6), name
        # Rank 0 alone is not the global loss: the two halves of each batch differ.
        assert ranks[0]['losses'] != pytest.approx(one['losses'], rel=1e-5), name
        expected = torch.load(single / f'{name}.pth')
        got = torch.load(dist / f'{name}.pth')
        assert expected.keys() == got.keys()
        for key, value in expected.items():
            # Summation order (all-reduce vs one batch) moves weights by up to ~4e-6 (MaskSAM,
            # 2 SGD steps); other samples or a wrong gradient scale move them by ~1e-3.
            torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5,
                                       msg=lambda m, key=key: f'{name}: {key}: {m}')
    # Metrics gathered from 2 ranks over 5 test images (one padded in) = one process's.
    one = json.loads((single / 'mcl.rank0.json').read_text())['metrics']
    got = json.loads((dist / 'mcl.rank0.json').read_text())['metrics']
    assert one and got.keys() == one.keys()
    assert got == pytest.approx(one, rel=1e-5, abs=1e-6)


def test_a_dying_rank_ends_the_job_with_a_clear_error(tmp_path):
    config = tmp_path / 'killed.py'
    config.write_text(f"_base_ = [{str(SAMED)!r}]\n"
                      "custom_imports = dict(imports=['kill_points'], allow_failed_imports=False)\n"
                      "custom_hooks = [dict(type='KillPointHook')]\n")
    options = [f'{k}={v}' for k, v in loaders(
        {'train_cfg.max_epochs': 100, 'default_hooks.logger.interval': 1},
        1, data_root=str(tmp_path / 'abdomen'), **{'generator.num_train_cases': 1,
                                                  'generator.num_test_cases': 1,
                                                  'generator.depth': 8}).items()]
    cmd = torchrun(2, REPO / 'tools' / 'train.py', config, '--launcher', 'pytorch',
                   '--work-dir', tmp_path / 'work', '--cfg-options', *options)
    # Rank 1 dies in its 3rd iteration; rank 0 then waits in the gradient all-reduce.
    proc = subprocess.run(cmd, cwd=REPO, env=env(MMSAM_TEST_KILL='train_iter:3',
                                                 MMSAM_TEST_KILL_RANK='1'),
                          capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert 'ChildFailedError' in out and 'train.py FAILED' in out, out[-4000:]
    assert 'rank      : 1' in out and 'Signal 9 (SIGKILL)' in out, out[-4000:]

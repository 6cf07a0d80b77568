"""Shared fixtures: tiny SAMs built with segment-anything's own classes, saved in the official
checkpoint layout (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``)."""
import importlib.util
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)

from mmsam.utils import register_all_modules

# Configs and components build under default_scope='mmsam', as tools/train.py sets it.
register_all_modules(init_default_scope=True)

# Under pytest-xdist (`make test` runs 2 workers on 2 cores) each worker keeps one intra-op
# thread, as the tools' subprocesses do: two workers with torch's default pool oversubscribe
# the cores and spin.
if os.environ.get('PYTEST_XDIST_WORKER'):
    torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path, module_name=None):
    """Load a script of the repository as a module (``tools/`` is not a package).

    Args:
        relative_path (str | Path): the script's path relative to the repository root, e.g.
            ``'tools/infer.py'``.
        module_name (str, optional): the module's ``__name__``; by default one derived from the
            path, e.g. ``'mmsam_script_tools_infer'``.

    Returns:
        module: a fresh module object on each call (the script is executed again), not
        registered in ``sys.modules``.
    """
    if module_name is None:
        stem = Path(relative_path).with_suffix('').as_posix()
        module_name = 'mmsam_script_' + re.sub(r'\W', '_', stem)
    spec = importlib.util.spec_from_file_location(module_name, REPO_ROOT / relative_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nnunet_fingerprint_stats(cases):
    """nnU-Net 2.5.1's CT statistics of (image, label) (D, H, W) cases: its fingerprint's draws
    (10e7 // N per case with replacement, seed 1234), then numpy's mean, std and percentiles."""
    import numpy as np
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import \
        DatasetFingerprintExtractor
    draws = np.concatenate([DatasetFingerprintExtractor.collect_foreground_intensities(
        np.asarray(label)[None], np.asarray(image, np.float32)[None],
        num_samples=int(10e7 // len(cases)))[0][0] for image, label in cases])
    low, high = np.percentile(draws, (0.5, 99.5))
    return dict(mean=float(np.mean(draws)), std=float(np.std(draws)),
                percentile_00_5=float(low), percentile_99_5=float(high))


def synthetic_abdomen_options(data_root, batch_size=2):
    """``--cfg-options`` that shrink a synthetic-abdomen config for tests: one 8-slice case
    for training and one for testing under ``data_root``, no loader workers, and
    ``batch_size`` in every loader (None keeps the config's)."""
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={data_root}',
                    f'{loader}.dataset.generator.num_train_cases=1',
                    f'{loader}.dataset.generator.num_test_cases=1',
                    f'{loader}.dataset.generator.depth=8',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
        if batch_size is not None:
            options.append(f'{loader}.batch_size={batch_size}')
    return options


def iter_options(max_iters, checkpoint_interval):
    """An iteration-based loop of ``max_iters`` with a checkpoint every ``checkpoint_interval``.

    No validation during training (tools/test.py runs the evaluator); ``_delete_`` replaces
    the config's epoch-based ``train_cfg`` instead of merging into it.
    """
    return ['train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop',
            f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=1000',
            'train_cfg.val_begin=1000',
            'default_hooks.checkpoint.by_epoch=False',
            f'default_hooks.checkpoint.interval={checkpoint_interval}',
            'default_hooks.logger.interval=1', 'randomness.deterministic=True']


def train_shrunk_synthetic_abdomen(config, root, *options, timeout=600):
    """Train ``config`` (a synthetic-abdomen config) for 2 iterations with ``tools/train.py``
    in a subprocess on CPU, shrunk by :func:`synthetic_abdomen_options`, plus ``options``.

    Returns:
        tuple[Path, Path]: the ``iter_2.pth`` checkpoint and the generated data root.
    """
    data_root, work_dir = Path(root) / 'data', Path(root) / 'work'
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), str(config), '--work-dir',
         str(work_dir), '--cfg-options', *synthetic_abdomen_options(data_root), *options,
         *iter_options(2, 2)],
        cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work_dir / 'iter_2.pth', data_root


# A SAM-architecture ViT small enough for CPU tests (as in the demo config).
TINY_ARCH = dict(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), patch_size=8,
                 window_size=4, out_chans=32)
TINY_IMG = 64


def build_reference_sam(arch=TINY_ARCH, img_size=TINY_IMG, num_multimask_outputs=3):
    """A randomly initialised SAM made only of segment-anything's modules."""
    torch.manual_seed(0)
    grid = img_size // arch['patch_size']
    width = arch['out_chans']
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size, patch_size=arch['patch_size'], embed_dim=arch['embed_dim'],
            depth=arch['depth'], num_heads=arch['num_heads'], mlp_ratio=4.0, out_chans=width,
            qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=arch['window_size'], global_attn_indexes=arch['global_attn_indexes']),
        prompt_encoder=PromptEncoder(embed_dim=width, image_embedding_size=(grid, grid),
                                     input_image_size=(img_size, img_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=num_multimask_outputs, transformer_dim=width,
            transformer=TwoWayTransformer(depth=2, embedding_dim=width, mlp_dim=64, num_heads=2),
            iou_head_depth=3, iou_head_hidden_dim=32),
    )
    # SAM zero-initialises position tables; randomise them so loading is really tested.
    with torch.no_grad():
        for name, param in sam.named_parameters():
            if 'pos' in name:
                param.normal_(0, 0.02)
    return sam.eval()


@pytest.fixture(scope='session')
def tiny_sam():
    return build_reference_sam()


@pytest.fixture(scope='session')
def tiny_sam_checkpoint(tiny_sam, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'tiny_sam.pth'
    torch.save(tiny_sam.state_dict(), path)
    return str(path)


def tiny_box_prompt_segmentor_cfg(head_type='SAMMCLHead', **test_cfg):
    """A MultiHypothesisSegmentor config with the tiny SAM and a box-prompted head."""
    loss = (dict(type='MultipleChoiceDiceLoss') if head_type == 'SAMMCLHead' else
            [dict(type='MaskDiceLoss'), dict(type='MaskBCELoss')])
    width = TINY_ARCH['out_chans']
    return dict(
        type='MultiHypothesisSegmentor',
        data_preprocessor=dict(type='SAMDataPreProcessor', mean=[0.] * 3, std=[255.] * 3,
                               size=(TINY_IMG, TINY_IMG)),
        backbone=dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=TINY_IMG, frozen=True),
        decode_head=dict(
            type=head_type,
            prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=width, img_size=TINY_IMG,
                                patch_size=TINY_ARCH['patch_size']),
            mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=width,
                              transformer_mlp_dim=64, transformer_num_heads=2,
                              iou_head_hidden_dim=32),
            loss_decode=loss),
        test_cfg=test_cfg)


# The SAM MCL synthetic-lesion config with random weights (no tiny MedSAM file needed).
SAM_MCL_RANDOM_CONFIG = (Path(__file__).parent / 'data' / 'configs' /
                         'sam-mcl_synthetic-lesion_random-weights.py')


@pytest.fixture(scope='session')
def mcl_checkpoint(tmp_path_factory):
    """Random weights of the tiny SAM-MCL model in the Runner's checkpoint layout (a str path)."""
    from mmsam.apis import init_model
    torch.manual_seed(0)
    model = init_model(str(SAM_MCL_RANDOM_CONFIG))
    path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return str(path)


def expect_error(infer, argv, capsys, *patterns):
    """Run a CLI module's ``main(argv)`` and check it stops with exit code 2 (argparse's
    ``parser.error``) and a message on stderr containing every pattern."""
    with pytest.raises(SystemExit) as err:
        infer.main(argv)
    assert err.value.code == 2
    message = capsys.readouterr().err
    for pattern in patterns:
        assert pattern in message, message

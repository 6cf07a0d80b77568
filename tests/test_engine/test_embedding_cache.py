"""EmbeddingCache and EmbeddingCacheHook: same losses as without the cache, encoder skipped once
warm, invalidation, and the hook refusing trainable encoders and random pixel transforms."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.hooks import Hook
from mmengine.structures import BaseDataElement

from mmsam.engine.embedding_cache import META_FILE, EmbeddingCache, weights_digest
from mmsam.engine.hooks.embedding_cache_hook import EmbeddingCacheHook
from mmsam.engine.runner import build_runner
from mmsam.registry import MODELS
from conftest import SAM_MCL_RANDOM_CONFIG as CONFIG
from conftest import load_script

REPO = Path(__file__).resolve().parents[2]
TINY_ENCODER = dict(type='SAMImageEncoder', img_size=32, frozen=True, checkpoint=None,
                    arch=dict(embed_dim=16, depth=1, num_heads=2, global_attn_indexes=(0,),
                              patch_size=8, window_size=4, out_chans=16))
PREPROCESSOR = dict(type='SAMDataPreProcessor', mean=[0.0] * 3, std=[1.0] * 3, size=(32, 32))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp('synthetic_lesions') / 'data'


def data_options(data_root):
    """16 training images in batches of 4, no workers; all loaders share one generator."""
    options = {}
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        options.update({f'{loader}.dataset.data_root': str(data_root),
                        f'{loader}.dataset.generator.num_train': 16,
                        f'{loader}.dataset.generator.num_val': 4,
                        f'{loader}.dataset.generator.num_test': 4,
                        f'{loader}.batch_size': 4,
                        f'{loader}.num_workers': 0,
                        f'{loader}.persistent_workers': False})
    return options


def tiny_cfg(data_root, work_dir, name, frozen=True, **options):
    cfg = Config.fromfile(str(CONFIG))
    cfg.merge_from_dict({**data_options(data_root), 'model.backbone.frozen': frozen,
                         'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 100,
                         'default_hooks.logger.interval': 1, **options})
    cfg.work_dir = str(work_dir)
    # Training draws nothing: the plain visualizer keeps this test about the cache only.
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.default_hooks.pop('visualization', None)
    cfg.experiment_name = name  # runners built in one second would share a logger otherwise
    return cfg


class RecordLosses(Hook):
    """Training losses per iteration, and images the encoder ran on per epoch."""

    def __init__(self):
        self.losses, self.encoded, self._images = [], [], 0

    def before_train(self, runner):
        def count(module, args, output):
            self._images += args[0].shape[0]
        runner.model.backbone.register_forward_hook(count)

    def before_train_epoch(self, runner):
        self._images = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))

    def after_train_epoch(self, runner):
        self.encoded.append(self._images)


def train(cfg):
    runner = build_runner(cfg)
    recorder = RecordLosses()
    runner.register_hook(recorder, priority='LOWEST')
    runner.train()
    return runner, recorder


def test_cached_training_gives_identical_losses_and_skips_the_encoder(data_root, tmp_path):
    _, plain = train(tiny_cfg(data_root, tmp_path / 'plain', 'plain', custom_hooks=[]))
    runner, cached = train(tiny_cfg(data_root, tmp_path / 'cached', 'cached',
                                    custom_hooks=[dict(type='EmbeddingCacheHook',
                                                       storage_dtype='float32')]))
    assert len(plain.losses) == len(cached.losses) == 8  # 2 epochs of 4 iterations
    assert cached.losses == plain.losses  # exactly, not approximately
    assert plain.encoded == [16, 16]
    assert cached.encoded == [16, 0]  # epoch 2: every image read from the cache
    (folder,) = (tmp_path / 'cached' / 'embedding_cache').iterdir()
    assert folder.name.startswith('SAMImageEncoder-')
    # 16 training images and the 4 validated after the last epoch: the val pipeline changes
    # pixels as the train pipeline does (only prompts differ), so both share one folder.
    assert len(list(folder.glob('*.pt'))) == 16 + 4
    assert (folder / META_FILE).is_file()
    log = next((tmp_path / 'cached').glob('*/*.log')).read_text()
    assert 'epoch 2: 16 hits, 0 misses' in log
    # The hook hands the cache back after training.
    assert runner.model.embedding_cache is None


class CountingEncoder(torch.nn.Module):
    """A tiny deterministic encoder returning two maps, counting the images it sees."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 4, stride=4)
        self.images = 0

    def forward(self, x):
        self.images += x.shape[0]
        y = self.conv(x)
        return y, y.mean(1, keepdim=True)


def samples(paths):
    return [BaseDataElement(metainfo=dict(img_path=str(p))) for p in paths]


def write_images(tmp_path, n):
    paths = []
    for i in range(n):
        path = tmp_path / f'img{i}.npz'
        np.savez(path, image=np.full((4, 4), i, np.float32))
        paths.append(path)
    return paths


def test_cache_reassembles_hits_and_misses_in_batch_order(tmp_path):
    torch.manual_seed(0)
    encoder = CountingEncoder().eval()
    cache = EmbeddingCache(tmp_path / 'cache', storage_dtype='float32')
    paths = write_images(tmp_path, 4)
    inputs = torch.randn(4, 3, 8, 8)
    expected = encoder(inputs)
    encoder.images = 0
    cache(encoder, inputs[[1, 3]], samples([paths[1], paths[3]]))
    got = cache(encoder, inputs, samples(paths))
    assert encoder.images == 2 + 2  # only images 0 and 2 on the second call
    assert (cache.hits, cache.misses) == (2, 4)
    assert len(got) == 2
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=0, atol=1e-6)
    again = cache(encoder, inputs, samples(paths))
    assert encoder.images == 4 and cache.hits == 6
    for g, e in zip(again, got):
        assert torch.equal(g, e)


def test_rewritten_image_invalidates_its_entry(tmp_path):
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / 'cache', verify_inputs=False)
    paths = write_images(tmp_path, 2)
    inputs = torch.randn(2, 3, 8, 8)
    cache(encoder, inputs, samples(paths))
    cache(encoder, inputs, samples(paths))
    assert (cache.hits, cache.misses) == (2, 2)
    # Rewrite image 0 with content of the same size; a later write has a later mtime.
    before = os.stat(paths[0])
    np.savez(paths[0], image=np.full((4, 4), 7, np.float32))
    os.utime(paths[0], ns=(before.st_atime_ns, before.st_mtime_ns + 10**6))
    assert os.stat(paths[0]).st_size == before.st_size
    encoder.images = 0
    cache(encoder, inputs, samples(paths))
    assert encoder.images == 1 and (cache.hits, cache.misses) == (3, 3)


def test_changed_input_pixels_are_a_miss(tmp_path):
    encoder = CountingEncoder()
    cache = EmbeddingCache(tmp_path / 'cache', storage_dtype='float32')
    paths = write_images(tmp_path, 2)
    inputs = torch.randn(2, 3, 8, 8)
    cache(encoder, inputs, samples(paths))
    changed = inputs.clone()
    changed[1, 0, 0, 0] += 1  # e.g. a random transform the hook did not know
    encoder.images = 0
    got = cache(encoder, changed, samples(paths))
    assert encoder.images == 1 and (cache.hits, cache.misses) == (1, 3)
    torch.testing.assert_close(got[0], encoder(changed)[0], rtol=0, atol=1e-6)


def test_slices_of_one_volume_have_their_own_entries(tmp_path):
    (path,) = write_images(tmp_path, 1)
    keys = {EmbeddingCache.entry_key(BaseDataElement(metainfo=dict(img_path=str(path),
                                                                   slice_index=i)))
            for i in range(3)}
    assert len(keys) == 3
    with pytest.raises(KeyError, match='img_path'):
        EmbeddingCache.entry_key(BaseDataElement(metainfo=dict()))


def test_cache_folder_changes_with_weights_and_preprocessor(tmp_path):
    torch.manual_seed(0)
    encoder = MODELS.build(TINY_ENCODER)

    def folder(enc=encoder, backbone_cfg=TINY_ENCODER, preprocessor=PREPROCESSOR):
        return EmbeddingCache.for_backbone(str(tmp_path), enc, backbone_cfg,
                                           preprocessor).cache_dir

    first = folder()
    assert folder() == first  # deterministic
    assert Path(first).parent == tmp_path / 'embedding_cache'
    meta = (Path(first) / META_FILE).read_text()
    assert weights_digest(encoder) in meta and 'SAMDataPreProcessor' in meta

    other = MODELS.build(TINY_ENCODER)
    other.load_state_dict(encoder.state_dict())
    assert folder(other) == first  # same weights, another module
    with torch.no_grad():
        other.patch_embed.proj.weight[0, 0, 0, 0] += 1e-3  # e.g. another checkpoint
    assert folder(other) != first
    assert folder(preprocessor={**PREPROCESSOR, 'std': [2.0] * 3}) != first
    assert folder(preprocessor={**PREPROCESSOR, 'size': (64, 64)}) != first
    assert folder(backbone_cfg={**TINY_ENCODER, 'out_indices': (0,)}) != first


class Logger:
    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)


def fake_runner(tmp_path, backbone_cfg, pipeline):
    model = MODELS.build(dict(
        type='MultiHypothesisSegmentor', data_preprocessor=PREPROCESSOR, backbone=backbone_cfg,
        decode_head=dict(
            type='SAMMCLHead', loss_decode=dict(type='MultipleChoiceDiceLoss'),
            prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=16, img_size=32,
                                patch_size=8),
            mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=16, transformer_mlp_dim=32,
                              transformer_num_heads=2, iou_head_hidden_dim=16,
                              num_multimask_outputs=3))))
    loader = SimpleNamespace(dataset=SimpleNamespace(pipeline=Compose(pipeline)))
    cfg = Config(dict(model=dict(backbone=backbone_cfg, data_preprocessor=PREPROCESSOR),
                      train_dataloader=dict(dataset=dict(pipeline=pipeline))))
    return SimpleNamespace(model=model, cfg=cfg, train_dataloader=loader, logger=Logger(),
                           work_dir=str(tmp_path), epoch=0)


PIPELINE = [dict(type='LoadMultiAnnotatorSample'), dict(type='BoxPromptFromAnnotation'),
            dict(type='Resize', scale=(32, 32), keep_ratio=False),
            dict(type='PackMultiAnnotatorInputs')]


def test_hook_enables_the_cache_for_a_frozen_encoder(tmp_path):
    runner = fake_runner(tmp_path, TINY_ENCODER, PIPELINE)
    hook = EmbeddingCacheHook()
    hook.before_train(runner)
    assert isinstance(runner.model.embedding_cache, EmbeddingCache)
    assert runner.model.embedding_cache.cache_dir.startswith(str(tmp_path / 'embedding_cache'))
    hook.after_train(runner)
    assert runner.model.embedding_cache is None


@pytest.mark.parametrize('backbone_cfg, pipeline, expected', [
    ({**TINY_ENCODER, 'frozen': False}, PIPELINE, 'trainable parameters (frozen=False)'),
    ({**TINY_ENCODER, 'adapter': dict(type='LoRA', rank=2)}, PIPELINE,
     'trainable parameters (LoRA adapter'),
    (TINY_ENCODER, PIPELINE[:3] + [dict(type='RandomRotateScale', prob=1.0)] + PIPELINE[3:],
     'the train pipeline has RandomRotateScale'),
], ids=['trainable', 'lora', 'random-transform'])
def test_hook_refuses_and_says_why(tmp_path, backbone_cfg, pipeline, expected):
    runner = fake_runner(tmp_path, backbone_cfg, pipeline)
    EmbeddingCacheHook().before_train(runner)
    assert runner.model.embedding_cache is None
    (message,) = runner.logger.messages
    assert 'no embedding cache for train' in message and expected in message
    assert not (tmp_path / 'embedding_cache').exists()


def test_hook_accepts_transforms_declared_deterministic(tmp_path):
    pipeline = PIPELINE[:3] + [dict(type='RandomRotateScale', prob=1.0)] + PIPELINE[3:]
    runner = fake_runner(tmp_path, TINY_ENCODER, pipeline)
    EmbeddingCacheHook(deterministic_transforms=['RandomRotateScale']).before_train(runner)
    assert runner.model.embedding_cache is not None


@pytest.mark.slow
def test_benchmark_tool_runs_and_prints_the_table(data_root):
    options = [f'{k}={v}' for k, v in data_options(data_root).items()]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'analysis_tools' / 'benchmark.py'), str(CONFIG),
         '--iters', '3', '--warmup', '1', '--storage-dtype', 'float32', '--cfg-options',
         'model.backbone.frozen=True',
         *options], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for row in ('(a) no cache', '(b) cache filling', '(c) cache warm'):
        assert row in proc.stdout
    warm = next(line for line in proc.stdout.splitlines() if '(c) cache warm' in line)
    cells = [c.strip() for c in warm.split('|')]
    assert cells[5] == '0 / 16'  # no encoder pass with a warm cache
    assert cells[8] == '0'  # same losses as without the cache
    assert 'fp32: speed-up of the warm cache (c) over no cache (a)' in proc.stdout


def test_benchmark_trainable_encoder_and_inference(data_root, capsys):
    benchmark = load_script('tools/analysis_tools/benchmark.py')
    options = [f'{k}={v}' for k, v in data_options(data_root).items()]
    result = benchmark.main([str(CONFIG), '--iters', '2', '--warmup', '1', '--cfg-options',
                             *options, 'model.backbone.frozen=False'])
    out = capsys.readouterr().out
    assert 'The embedding cache cannot apply: the encoder has trainable parameters' in out
    assert '(a) no cache' in out and '(c) cache warm' not in out
    assert 'cached' not in result['fp32']

    result = benchmark.main([str(CONFIG), '--mode', 'infer', '--num-hypotheses', '1', '3',
                             '--iters', '1', '--warmup', '0', '--dtype', 'bf16', 'fp32',
                             '--cfg-options', *options])
    out = capsys.readouterr().out
    assert 'encoder passes per image' in out and 'fixed M: SAMMCLHead gives 3' in out
    assert list(result) == ['fp32', 'bf16']  # fp32 first, so the others compare with it
    assert result['bf16'][3]['passes_per_image'] == 1
    assert result['fp32'][1] is None  # SAM MCL always gives its 3 masks
    assert result['fp32'][3]['passes_per_image'] == 1  # one encoder pass for all M hypotheses


def test_half_storage_rounds_hits_and_misses_alike(tmp_path):
    """float16/bfloat16 entries: what a miss returns equals what the later hit reads (so a
    resumed run sees the features an uninterrupted one saw), half the bytes of float32."""
    torch.manual_seed(0)
    encoder = CountingEncoder()
    paths = write_images(tmp_path, 2)
    inputs = torch.randn(2, 3, 8, 8)
    exact = encoder(inputs)
    sizes = {}
    for dtype in ('float16', 'bfloat16', 'float32'):
        cache = EmbeddingCache(tmp_path / dtype, storage_dtype=dtype)
        cold = cache(encoder, inputs, samples(paths))
        warm = cache(encoder, inputs, samples(paths))
        assert cache.hits == 2
        for c, w, e in zip(cold, warm, exact):
            assert c.dtype == w.dtype == e.dtype == torch.float32
            assert torch.equal(c, w)
            # The rounding is the storage dtype's own (checked against a plain cast).
            assert torch.equal(c, e.detach().to(getattr(torch, dtype)).float())
        sizes[dtype] = sum(t.element_size() for t in torch.load(
            next((tmp_path / dtype).glob('*.pt')), weights_only=True)['feats'])
    assert sizes == {'float16': 2 + 2, 'bfloat16': 2 + 2, 'float32': 4 + 4}  # two outputs
    with pytest.raises(ValueError, match="storage_dtype='float8'"):
        EmbeddingCache(tmp_path / 'x', storage_dtype='float8')


def test_half_storage_keeps_float32_where_float16_overflows(tmp_path):
    (path,) = write_images(tmp_path, 1)
    cache = EmbeddingCache(tmp_path / 'cache', storage_dtype='float16')
    big = torch.tensor([[[[1e6]]]])  # over float16's 65504

    def encoder(x):
        return (big.expand(x.shape[0], 1, 1, 1).clone(),)

    (out,) = cache(encoder, torch.zeros(1, 3, 4, 4), samples([path]))
    assert out.item() == 1e6
    (again,) = cache(encoder, torch.zeros(1, 3, 4, 4), samples([path]))
    assert cache.hits == 1 and again.item() == 1e6


def test_cache_folder_changes_with_code_versions_and_storage(tmp_path, monkeypatch):
    from mmsam.engine import embedding_cache as module
    torch.manual_seed(0)
    encoder = MODELS.build(TINY_ENCODER)

    def folder(**kwargs):
        return EmbeddingCache.for_backbone(str(tmp_path), encoder, TINY_ENCODER, PREPROCESSOR,
                                           **kwargs).cache_dir

    first = folder()
    meta = (Path(first) / META_FILE).read_text()
    assert module.code_digest(encoder) in meta and torch.__version__ in meta
    assert '"storage_dtype": "float16"' in meta
    assert folder(storage_dtype='float32') != first
    monkeypatch.setattr(module, 'library_versions',
                        lambda: dict(mmsam='9.9', segment_anything='1.0', torch='x'))
    assert folder() != first
    monkeypatch.undo()
    # The encoder's source code: another source file for one of its classes.
    real = module.code_digest(encoder)
    monkeypatch.setattr(module.hashlib, 'sha256', _salted_sha256(module.hashlib.sha256))
    assert module.code_digest(encoder) != real


def _salted_sha256(sha256):
    """sha256 of every file read as if one byte had changed (a stand-in for an edited file)."""
    def salted(data=b''):
        return sha256(data + b'#') if data else sha256()
    return salted


def test_disk_check_before_the_first_entry(tmp_path, monkeypatch):
    from mmsam.utils import disk
    paths = write_images(tmp_path, 2)
    cache = EmbeddingCache(tmp_path / 'cache', expected_entries=1000)
    monkeypatch.setattr(disk, 'free_bytes', lambda path: 10_000)
    with pytest.raises(OSError, match=r'not enough free disk space for the embedding cache '
                                      r'\(1000 entries .* it needs about .* are free'):
        cache(CountingEncoder(), torch.randn(2, 3, 8, 8), samples(paths))
    assert not list((tmp_path / 'cache').glob('*.pt'))  # nothing written

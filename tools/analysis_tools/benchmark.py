"""Training and inference speed of a config, measured side by side in one run.

    python tools/analysis_tools/benchmark.py CONFIG [--iters N] [--warmup N] [--cfg-options ...]
    python tools/analysis_tools/benchmark.py CONFIG --mode infer --num-hypotheses 1 3 10

``--mode train`` (default) times ``model.train_step`` with the config's optimizer wrapper over
two epochs of a training subset of ``(warmup + iters) * batch_size`` images, with the same
seed: (a) without the embedding cache; then, when the image encoder is frozen and the training
pipeline pixel-deterministic, (b) filling the cache (epoch 1) and (c) with a warm cache
(epoch 2). The table shows iterations/s, images the encoder ran on, the speed-up over (a) in the
same epoch and the largest loss difference from (a) (0 when the cache is exact:
``--storage-dtype float32``; the default float16 storage rounds the cached features). A tiny
config with a trainable encoder can be frozen with ``--cfg-options model.backbone.frozen=True``.

``--mode infer`` times ``model.test_step`` on the test set for each M of ``--num-hypotheses``
(``test_cfg.num_hypotheses=M``), with its cost relative to the first M, and counts image-encoder
passes per image. Heads with a fixed number of outputs refuse other M values: their rows say
"fixed M". With a config, ``--dtype fp32 bf16`` repeats either mode per dtype (training through
mmsam's ``AmpOptimWrapper``, inference under autocast). ``configs/benchmarks/`` holds SeqSAM
and MedSAM at SAM's real 1024 x 1024 input::

    python tools/analysis_tools/benchmark.py \
        configs/benchmarks/medsam_vit-b_synthetic-lesion-1024.py --iters 3 --warmup 1 \
        --dtype fp32 bf16

``--mode encoder`` (no config) times segment-anything's ``ImageEncoderViT`` and mmsam's
``SAMImageEncoder`` with the same random weights, interleaved, per ``--dtype`` (fp32; bf16 /
fp16 under autocast), with the median and min of ``--repeats`` runs, the speed-up over
segment-anything fp32 and over segment-anything at the same dtype, the max abs / relative L2
difference from segment-anything fp32, and TFLOP/s against the encoder's counted FLOPs::

    python tools/analysis_tools/benchmark.py --mode encoder --arch vit_b --img-size 1024 \
        --dtype fp32 bf16 --device cpu [--impls fused reference] [--compile] \
        [--kernels auto sdpa masked] [--clock cpu]

``--kernels`` times the fused attention with each kernel forced (a row each; default ``auto``,
what the model runs); ``--clock cpu`` measures the process CPU time instead of wall time (on a
machine shared with other jobs, at ``OMP_NUM_THREADS=1``).

``--mode train`` without a config times one SAMed training step (ViT-B + LoRA r=4 on q, v,
SAMed's head and losses, AdamW; ``configs/samed/samed_vit-b_synapse.py``'s model with random
weights) for each attention implementation and dtype, interleaved, on synthetic batches::

    python tools/analysis_tools/benchmark.py --mode train --img-size 512 --batch-size 1 \
        --dtype fp32 bf16 --impls reference fused

The model is built with random weights (no checkpoint is read: speed does not depend on the
weights). It runs on the GPU when there is one (``--device`` for the modes without a config).
Speed is reported as ratios measured in one run, on one machine.
"""
import argparse
import copy
import json
import os
import os.path as osp
import shutil
import statistics
import tempfile
import time
from functools import partial

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner, set_random_seed
from prettytable import PrettyTable

from mmsam.engine.embedding_cache import EmbeddingCache
from mmsam.engine.embedding_cache_rules import (dataset_transforms, pipeline_cfgs,
                                               pipeline_reason, train_mode_reason,
                                               trainable_reason)
from mmsam.models.backbones.encoder_flops import sam_encoder_flops
from mmsam.models.backbones.fused_rel_pos_attention import FusedRelPosAttention
from mmsam.models.backbones.sam_image_encoder import resolve_arch
from mmsam.registry import MODELS
from mmsam.utils import register_all_modules
from mmsam.utils.collect_env import cpu_bf16_kind, cpu_description


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?',
                        help='needed by --mode infer and the cache comparison of --mode train')
    parser.add_argument('--mode', choices=['train', 'infer', 'encoder'], default='train')
    parser.add_argument('--arch', default='vit_b',
                        help='encoder / SAMed-step modes: vit_b, vit_l, vit_h or a JSON arch dict')
    parser.add_argument('--img-size', type=int, default=None,
                        help='encoder mode: default 1024; SAMed step: default 512')
    parser.add_argument('--dtype', nargs='+', choices=['fp32', 'bf16', 'fp16'], default=None,
                        help='bf16 / fp16 run under autocast (training: mmsam AmpOptimWrapper); '
                        'default fp32 bf16 without a config, fp32 with one')
    parser.add_argument('--impls', nargs='+', choices=['fused', 'reference'], default=None,
                        help="mmsam attention implementations (encoder: ['fused']; "
                        "SAMed step: ['reference', 'fused'])")
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if any)')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs per variant')
    parser.add_argument('--batch-size', type=int, default=1, help='encoder / SAMed-step batch')
    parser.add_argument('--compile', action='store_true',
                        help="encoder mode: add mmsam fused under torch.compile")
    parser.add_argument('--kernels', nargs='+', default=['auto'],
                        choices=list(FusedRelPosAttention.KERNELS),
                        help="encoder mode: the fused attention's kernels to time, a row each "
                        "(default: auto, what the model runs)")
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                        help='wall time (default), or the process CPU time: on a machine shared '
                        'with other jobs, at 1 thread, the CPU time is what an idle core takes')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per epoch')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations at the start of each epoch')
    parser.add_argument('--num-hypotheses', type=int, nargs='+', default=[1, 3, 10],
                        help='M values to time in --mode infer')
    parser.add_argument('--seed', type=int, default=None,
                        help="default: the config's randomness.seed, else 0")
    parser.add_argument('--storage-dtype', choices=['float16', 'bfloat16', 'float32'],
                        default='float16', help='embedding cache storage dtype (default '
                        'float16, as EmbeddingCacheHook; float32 is exact: loss difference 0)')
    parser.add_argument('--cache-dir', help='embedding cache root (default: a temporary '
                        'folder, removed at the end; it must start empty)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if any(m < 1 for m in args.num_hypotheses):
        parser.error('--num-hypotheses values must be >= 1')
    if args.mode == 'infer' and args.config is None:
        parser.error('--mode infer needs a config')
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    if args.dtype is None:
        args.dtype = ['fp32'] if args.config else ['fp32', 'bf16']
    if args.arch.startswith('{'):  # a small arch dict for quick runs, as JSON
        try:
            args.arch = json.loads(args.arch)
        except json.JSONDecodeError as err:
            parser.error(f'--arch {args.arch}: not valid JSON ({err})')
    return args


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class EncoderCounter:
    """Counts the images a backbone encodes (a forward hook)."""

    def __init__(self, backbone):
        self.images = 0
        self.calls = 0
        self.handle = backbone.register_forward_hook(self._count)

    def _count(self, module, args, output):
        self.calls += 1
        self.images += args[0].shape[0]


def subset_loader(loader_cfg, num_images, seed):
    """The config's dataloader over the dataset's first ``num_images`` items."""
    loader_cfg = loader_cfg.copy()
    loader_cfg.dataset = loader_cfg.dataset.copy()
    loader_cfg.dataset.indices = num_images
    return Runner.build_dataloader(loader_cfg, seed=seed)


def timed_epoch(model, loader, epoch, warmup, iters, step, device):
    """Runs ``step(batch)`` over one epoch (at most warmup + iters batches).

    Returns:
        tuple[float, list[float]]: iterations/s after the warm-up, ``step``'s return values.
    """
    if hasattr(loader.sampler, 'set_epoch'):
        loader.sampler.set_epoch(epoch)
    results, start, timed = [], None, 0
    for i, batch in enumerate(loader):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        results.append(step(batch))
        timed += i >= warmup
        if i + 1 == warmup + iters:
            break
    _sync(device)
    if start is None or timed == 0:
        raise RuntimeError(f'the data gave {len(results)} batches, not more than --warmup '
                           f'{warmup}: lower --warmup or enlarge the data set')
    return timed / (time.perf_counter() - start), results


def build_model(cfg, seed, device):
    set_random_seed(seed)
    return MODELS.build(cfg.model).to(device)


def train_run(cfg, args, seed, device, cache_root=None):
    """Two timed epochs; returns [(it/s, losses, encoded images)] per epoch and the cache."""
    model = build_model(cfg, seed, device)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    num_images = (args.warmup + args.iters) * cfg.train_dataloader.batch_size
    loader = subset_loader(cfg.train_dataloader, num_images, seed)
    cache = None
    if cache_root is not None:
        cache = EmbeddingCache.for_backbone(
            cache_root, model.backbone, cfg.model.backbone, cfg.model.get('data_preprocessor'),
            pipeline_cfgs(cfg.train_dataloader.dataset), root=cache_root,
            storage_dtype=args.storage_dtype)
        model.embedding_cache = cache
    counter = EncoderCounter(model.backbone)

    def step(batch):
        return float(model.train_step(batch, optim_wrapper)['loss'].detach())

    epochs = []
    for epoch in range(2):
        before = counter.images
        speed, losses = timed_epoch(model, loader, epoch, args.warmup, args.iters, step, device)
        epochs.append((speed, losses, counter.images - before))
    counter.handle.remove()
    return epochs, cache


def why_no_cache(cfg, seed, device):
    """Why the embedding cache cannot apply to the config's training, or None."""
    model = build_model(cfg, seed, device)
    model.train()
    reason = trainable_reason(model.backbone, cfg.model.backbone) or \
        train_mode_reason(model.backbone)
    if reason is None and getattr(model.data_preprocessor, 'batch_augments', None):
        reason = 'the data preprocessor has batch_augments'
    if reason is None:
        dataset = subset_loader(cfg.train_dataloader, 1, seed).dataset
        for transforms in dataset_transforms(dataset):
            reason = reason or pipeline_reason(transforms)
    return reason


AMP_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}


def ordered_dtypes(dtypes):
    """--dtype values with fp32 first, so the other rows can be compared with it."""
    return sorted(dict.fromkeys(dtypes), key=['fp32', 'bf16', 'fp16'].index)


def with_autocast(cfg, dtype):
    """``cfg`` training under ``dtype`` autocast (mmsam's AmpOptimWrapper); fp32: unchanged."""
    if dtype == 'fp32':
        return cfg
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise SystemExit(f'--dtype {dtype}: the config has optim_wrapper.type={wrapper!r}; '
                         'only OptimWrapper or AmpOptimWrapper can run under autocast')
    cfg = copy.deepcopy(cfg)
    cfg.optim_wrapper.update(type='AmpOptimWrapper', dtype=AMP_DTYPES[dtype])
    return cfg


def benchmark_train(cfg, args, seed, device):
    """(a) no cache, (b) cache filling, (c) cache warm, per ``--dtype``.

    Returns:
        dict: ``{dtype: dict(uncached=..., cached=..., hits=..., misses=...)}``, or with
        ``reason`` instead of the cache entries when the cache cannot apply.
    """
    reason = why_no_cache(cfg, seed, device)
    batch = cfg.train_dataloader.batch_size
    table = PrettyTable(['dtype', 'run', 'epoch', 'it/s', 'images encoded', 'speed-up vs (a)',
                         'vs (a) fp32', 'max |loss - (a)|'])
    results = {}
    for dtype in ordered_dtypes(args.dtype):
        dtype_cfg = with_autocast(cfg, dtype)
        uncached, _ = train_run(dtype_cfg, args, seed, device)
        result = results[dtype] = dict(uncached=uncached)
        rows = [('(a) no cache', 1, uncached), ('(a) no cache', 2, uncached)]
        if reason is None:
            root = args.cache_dir or tempfile.mkdtemp(prefix='mmsam_benchmark_cache_')
            try:
                cached, cache = train_run(dtype_cfg, args, seed, device, cache_root=root)
            finally:
                if args.cache_dir is None:
                    shutil.rmtree(root, ignore_errors=True)
            result.update(cached=cached, hits=cache.hits, misses=cache.misses)
            rows += [('(b) cache filling', 1, cached), ('(c) cache warm', 2, cached)]
        else:
            result['reason'] = reason
        fp32 = results['fp32']['uncached'] if 'fp32' in results else None
        for name, epoch, runs in rows:
            speed, losses, encoded = runs[epoch - 1]
            ref_speed, ref_losses, _ = uncached[epoch - 1]
            diff = max(abs(a - b) for a, b in zip(losses, ref_losses))
            vs_fp32 = f'{speed / fp32[epoch - 1][0]:.2f}x' if fp32 else '-'
            table.add_row([dtype, name, epoch, f'{speed:.3f}', f'{encoded} / {len(losses) * batch}',
                           f'{speed / ref_speed:.2f}x', vs_fp32, f'{diff:.3g}'])
    print(f'Training speed, {args.iters} timed iterations per epoch after {args.warmup} '
          f'warm-up, batch {batch}, on {device} ({torch.get_num_threads()} threads):')
    print(table)
    if reason is not None:
        print(f'The embedding cache cannot apply: {reason}. Only (a) was measured.')
        return results
    for dtype, result in results.items():
        print(f'{dtype}: speed-up of the warm cache (c) over no cache (a): '
              f"{result['cached'][1][0] / result['uncached'][1][0]:.2f}x; cache: "
              f"{result['hits']} hits, {result['misses']} misses")
    return results


def benchmark_infer(cfg, args, seed, device):
    """``model.test_step`` per ``--dtype`` and M; returns ``{dtype: {M: dict | None}}``."""
    model = build_model(cfg, seed, device)
    model.eval()
    loader_cfg = cfg.test_dataloader
    loader = subset_loader(loader_cfg, (args.warmup + args.iters) * loader_cfg.batch_size, seed)
    counter = EncoderCounter(model.backbone)
    if model.test_cfg is None:
        model.test_cfg = {}
    first_m = args.num_hypotheses[0]
    table = PrettyTable(['dtype', 'M', 'images/s', 'ms/image', f'cost vs M={first_m}',
                         'encoder passes per image', 'note'])
    results = {}
    for dtype in ordered_dtypes(args.dtype):
        results[dtype] = {}

        def step(batch):
            with torch.no_grad(), autocast_ctx(device, dtype):
                return len(model.test_step(batch))

        for m in args.num_hypotheses:
            model.test_cfg['num_hypotheses'] = m
            counter.images = 0
            try:
                speed, per_batch = timed_epoch(model, loader, 0, args.warmup, args.iters, step,
                                               device)
            except ValueError as err:
                fixed = getattr(model.decode_head, 'num_hypotheses', None)
                note = f'fixed M: {type(model.decode_head).__name__} gives {fixed}' \
                    if fixed is not None else f'fixed M: {err}'
                table.add_row([dtype, m, '-', '-', '-', '-', note])
                results[dtype][m] = None
                continue
            timed_images = sum(per_batch[args.warmup:])
            img_speed = speed * timed_images / max(len(per_batch) - args.warmup, 1)
            passes = counter.images / max(sum(per_batch), 1)
            first = results[dtype].get(first_m)
            cost = f"{first['images_per_s'] / img_speed:.2f}x" if first else '-'
            table.add_row([dtype, m, f'{img_speed:.3f}', f'{1000 / img_speed:.1f}', cost,
                           f'{passes:.2f}', ''])
            results[dtype][m] = dict(images_per_s=img_speed, passes_per_image=passes)
    counter.handle.remove()
    print(f'Inference speed, {args.iters} timed batches after {args.warmup} warm-up, batch '
          f'{loader_cfg.batch_size}, on {device} ({torch.get_num_threads()} threads):')
    print(table)
    return results


AUTOCAST = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def reference_sam_encoder(arch, img_size):
    """segment-anything's ``ImageEncoderViT`` built as ``build_sam`` builds it."""
    from segment_anything.modeling import ImageEncoderViT
    hp = resolve_arch(arch)
    return ImageEncoderViT(
        img_size=img_size, patch_size=hp['patch_size'], in_chans=3, embed_dim=hp['embed_dim'],
        depth=hp['depth'], num_heads=hp['num_heads'], mlp_ratio=hp['mlp_ratio'],
        out_chans=hp['out_chans'], qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        act_layer=nn.GELU, use_abs_pos=True, use_rel_pos=True, window_size=hp['window_size'],
        global_attn_indexes=tuple(hp['global_attn_indexes']))


def randomise_position_tables_(encoder, seed):
    """SAM zero-initialises pos_embed and the rel-pos tables: random ones make them count."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if name == 'pos_embed' or name.endswith(('rel_pos_h', 'rel_pos_w')):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)


def interleaved_times(variants, repeats, device, clock=time.perf_counter):
    """Runs every variant once (warm-up), then ``repeats`` rounds of all of them in turn.

    Args:
        variants (dict[str, callable]): name -> function returning its output.
        clock (callable): seconds now (``time.perf_counter`` or ``time.process_time``).

    Returns:
        tuple[dict, dict, dict]: name -> list of seconds, name -> warm-up output, name ->
        seconds of the warm-up call (with ``torch.compile``: the compilation).
    """
    outputs, times, first = {}, {name: [] for name in variants}, {}
    for name, fn in variants.items():
        start = time.perf_counter()
        outputs[name] = fn()
        _sync(device)
        first[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, fn in variants.items():
            _sync(device)
            start = clock()
            fn()
            _sync(device)
            times[name].append(clock() - start)
    return times, outputs, first


def autocast_ctx(device, dtype):
    if AUTOCAST[dtype] is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=AUTOCAST[dtype])


def benchmark_encoder(args, device):
    """segment-anything vs mmsam image encoder, same weights, one process."""
    img_size = args.img_size or 1024
    impls = args.impls or ['fused']
    set_random_seed(0)
    sam = reference_sam_encoder(args.arch, img_size)
    randomise_position_tables_(sam, 0)
    sam = sam.to(device).eval()
    encoders = {'segment-anything': sam}
    for impl in impls:
        for kernel in (args.kernels if impl == 'fused' else [None]):
            enc = MODELS.build(dict(type='SAMImageEncoder', arch=args.arch, img_size=img_size,
                                    attn_impl=impl))
            enc.load_state_dict(sam.state_dict())
            name = f'mmsam {impl}'
            if kernel is not None and args.kernels != ['auto']:
                name += f' ({kernel})'
            if kernel is not None:
                for block in enc.blocks:
                    block.attn.kernel = kernel
            encoders[name] = enc.to(device).eval()
    if args.compile:
        encoders['mmsam fused + compile'] = torch.compile(
            encoders.get('mmsam fused') or copy.deepcopy(encoders[f'mmsam {impls[0]}']))
    x = torch.randn(args.batch_size, 3, img_size, img_size,
                    generator=torch.Generator().manual_seed(0)).to(device)

    def run(encoder, dtype):
        def fn():
            with torch.no_grad(), autocast_ctx(device, dtype):
                out = encoder(x)
            return (out[0] if isinstance(out, tuple) else out).float()
        return fn

    dtypes = list(dict.fromkeys(['fp32'] + args.dtype))
    variants = {(name, dt): run(enc, dt) for dt in dtypes for name, enc in encoders.items()
                if dt in args.dtype or name == 'segment-anything'}
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    times, outputs, first = interleaved_times(variants, args.repeats, device, clock)
    flops = sam_encoder_flops(args.arch, img_size, args.batch_size)
    base = outputs[('segment-anything', 'fp32')]
    sa_median = {dt: statistics.median(times[('segment-anything', dt)]) for dt in dtypes
                 if ('segment-anything', dt) in times}
    table = PrettyTable(['encoder', 'dtype', 'median s', 'min s', 'first call s', 'vs SA fp32',
                         'vs SA same dtype', 'max |diff| vs SA fp32', 'rel L2 vs SA fp32',
                         'TFLOP/s'])
    results = {}
    for (name, dt), ts in times.items():
        med = statistics.median(ts)
        out = outputs[(name, dt)]
        max_abs = float((out - base).abs().max())
        rel_l2 = float((out - base).norm() / base.norm())
        results[(name, dt)] = dict(median=med, min=min(ts), first=first[(name, dt)],
                                   max_abs=max_abs, rel_l2=rel_l2,
                                   speedup=sa_median['fp32'] / med)
        table.add_row([name, dt, f'{med:.3f}', f'{min(ts):.3f}', f'{first[(name, dt)]:.1f}',
                       f"{sa_median['fp32'] / med:.2f}x", f'{sa_median[dt] / med:.2f}x',
                       f'{max_abs:.2e}', f'{rel_l2:.2e}', f'{flops / med / 1e12:.3f}'])
    print(f'Image encoder {args.arch} at {img_size} x {img_size}, batch {args.batch_size}, '
          f'{flops / 1e12:.3f} TFLOP per pass, on {device} ({torch.get_num_threads()} '
          f'threads), {args.repeats} interleaved repeats after one warm-up, {args.clock} '
          'time:')
    print(table)
    return results


def samed_step_model(arch, img_size, attn_impl):
    """SAMed's model (configs/samed/samed_vit-b_synapse.py) with random weights."""
    cfg = Config.fromfile(osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'configs', 'samed', 'samed_vit-b_synapse.py'))
    model = cfg.model
    model.backbone.update(arch=arch, img_size=img_size, checkpoint=None, attn_impl=attn_impl)
    model.decode_head.prompt_encoder.update(
        img_size=img_size, patch_size=resolve_arch(arch)['patch_size'], checkpoint=None)
    model.decode_head.mask_decoder.checkpoint = None
    model.data_preprocessor.size = (img_size, img_size)
    return model, cfg.optim_wrapper.optimizer


def synthetic_batch(img_size, batch, num_classes, seed):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, img_size, img_size), generator=gen,
                                    dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, img_size, img_size), generator=gen)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(img_size, img_size), ori_shape=(img_size, img_size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def benchmark_samed_step(args, device):
    """One SAMed LoRA training step per attention implementation and dtype, interleaved."""
    img_size = args.img_size or 512
    impls = args.impls or ['reference', 'fused']
    models, wrappers, state = {}, {}, None
    for impl in impls:
        model_cfg, optimizer = samed_step_model(args.arch, img_size, impl)
        set_random_seed(0)
        model = MODELS.build(model_cfg)
        if state is None:
            randomise_position_tables_(model.backbone, 0)
            state = model.state_dict()
        for dt in args.dtype:
            m = copy.deepcopy(model)
            m.load_state_dict(state)
            m.to(device).train()
            wrapper = dict(type='OptimWrapper', optimizer=optimizer) if dt == 'fp32' else \
                dict(type='AmpOptimWrapper', optimizer=optimizer,
                     dtype={'bf16': 'bfloat16', 'fp16': 'float16'}[dt])
            models[(impl, dt)] = m
            wrappers[(impl, dt)] = build_optim_wrapper(m, wrapper)
    batch = synthetic_batch(img_size, args.batch_size, model_cfg.decode_head.num_classes, 0)
    losses = {key: [] for key in models}

    def step(key):
        def fn():
            loss = models[key].train_step(batch, wrappers[key])['loss']
            losses[key].append(float(loss.detach()))
            return loss
        return fn

    times, _, _ = interleaved_times({key: step(key) for key in models}, args.repeats, device)
    base_key = (impls[0], 'fp32') if 'fp32' in args.dtype else next(iter(models))
    base = statistics.median(times[base_key])
    table = PrettyTable(['attention', 'dtype', 'median s/step', 'min s/step', 'it/s',
                         f'speed-up vs {base_key[0]} {base_key[1]}', 'first loss'])
    results = {}
    for key, ts in times.items():
        med = statistics.median(ts)
        results[key] = dict(median=med, min=min(ts), speedup=base / med, loss=losses[key][0])
        table.add_row([key[0], key[1], f'{med:.3f}', f'{min(ts):.3f}', f'{1 / med:.3f}',
                       f'{base / med:.2f}x', f'{losses[key][0]:.6f}'])
    print(f'SAMed LoRA training step ({args.arch}, {img_size} x {img_size}, batch '
          f'{args.batch_size}, AdamW), on {device} ({torch.get_num_threads()} threads), '
          f'{args.repeats} interleaved repeats after one warm-up step:')
    print(table)
    return results


def load_average():
    """The 1, 5 and 15 minute load averages as text (other jobs skew every timing)."""
    try:
        return ', '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:
        return 'unknown'


def machine_header(dtypes):
    """The lines naming what the numbers were measured on: CPU model and capability (AVX2 /
    AVX512 / AMX), GPU, torch, threads and load; a table without them cannot be compared.

    Args:
        dtypes (list[str]): the ``--dtype`` values (bf16 on a CPU without native bf16 is
            flagged: it is emulated).
    """
    lines = [f'CPU: {cpu_description()}']
    if torch.cuda.is_available():
        lines.append('GPU: ' + ', '.join(torch.cuda.get_device_name(i)
                                         for i in range(torch.cuda.device_count())))
    lines.append(f'torch {torch.__version__}, {torch.get_num_threads()} threads, load average '
                 f'{load_average()} (1, 5, 15 min)')
    if 'bf16' in dtypes and cpu_bf16_kind() is None:
        lines.append('bf16 on this CPU is emulated (no AMX or AVX512-BF16): expect bf16 rows '
                     'on the CPU to be slower than fp32.')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    print(machine_header(args.dtype), flush=True)
    try:
        return run(args)
    finally:
        print(f'load average at the end: {load_average()}')


def run(args):
    """Runs the benchmark ``args.mode`` asks for; returns its results."""
    if args.config is None:
        device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        if args.mode == 'encoder':
            return benchmark_encoder(args, device)
        return benchmark_samed_step(args, device)
    if args.mode == 'encoder':
        raise SystemExit('--mode encoder takes no config')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    seed = args.seed if args.seed is not None else (cfg.get('randomness') or {}).get('seed', 0)
    seed = 0 if seed is None else seed
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if args.mode == 'train':
        return benchmark_train(cfg, args, seed, device)
    return benchmark_infer(cfg, args, seed, device)


if __name__ == '__main__':
    main()

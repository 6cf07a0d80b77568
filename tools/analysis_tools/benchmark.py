"""Training and inference speed of a config, measured side by side in one run.

    python tools/analysis_tools/benchmark.py CONFIG [--iters N] [--warmup N] [--cfg-options ...]
    python tools/analysis_tools/benchmark.py CONFIG --mode infer --num-hypotheses 1 3 10

``--mode train`` (default) times ``model.train_step`` with the config's optimizer wrapper over
two epochs of a training subset of ``(warmup + iters) * batch_size`` images, with the same
seed: (a) without the embedding cache; then, when the image encoder is frozen and the training
pipeline pixel-deterministic, (b) filling the cache (epoch 1) and (c) with a warm cache
(epoch 2). The table shows iterations/s, images the encoder ran on, the speed-up over (a) in the
same epoch and the largest loss difference from (a) (0 when the cache is exact). A tiny config
with a trainable encoder can be frozen with ``--cfg-options model.backbone.frozen=True``.

``--mode infer`` times ``model.test_step`` on the test set for each M of ``--num-hypotheses``
(``test_cfg.num_hypotheses=M``) and counts image-encoder passes per image. Heads with a fixed
number of outputs refuse other M values: their rows say "fixed M".

The model is built with random weights (no checkpoint is read: speed does not depend on the
weights). It runs on the GPU when there is one. Speed is reported as ratios measured in one
run, on one machine.
"""
import argparse
import os.path as osp
import shutil
import sys
import tempfile
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner, set_random_seed
from prettytable import PrettyTable

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmsam.engine.embedding_cache import EmbeddingCache  # noqa: E402
from mmsam.engine.hooks.embedding_cache_hook import (_pipeline_cfgs,  # noqa: E402
                                                     dataset_transforms, pipeline_reason,
                                                     train_mode_reason, trainable_reason)
from mmsam.registry import MODELS  # noqa: E402
from mmsam.utils import register_all_modules  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--mode', choices=['train', 'infer'], default='train')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per epoch')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations at the start of each epoch')
    parser.add_argument('--num-hypotheses', type=int, nargs='+', default=[1, 3, 10],
                        help='M values to time in --mode infer')
    parser.add_argument('--seed', type=int, default=None,
                        help="default: the config's randomness.seed, else 0")
    parser.add_argument('--cache-dir', help='embedding cache root (default: a temporary '
                        'folder, removed at the end; it must start empty)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if any(m < 1 for m in args.num_hypotheses):
        parser.error('--num-hypotheses values must be >= 1')
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
            _pipeline_cfgs(cfg.train_dataloader.dataset), root=cache_root)
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


def benchmark_train(cfg, args, seed, device):
    reason = why_no_cache(cfg, seed, device)
    rows = [('(a) no cache', 1), ('(a) no cache', 2)]
    uncached, _ = train_run(cfg, args, seed, device)
    cached = None
    if reason is None:
        root = args.cache_dir or tempfile.mkdtemp(prefix='mmsam_benchmark_cache_')
        try:
            cached, cache = train_run(cfg, args, seed, device, cache_root=root)
        finally:
            if args.cache_dir is None:
                shutil.rmtree(root, ignore_errors=True)
        rows += [('(b) cache filling', 1), ('(c) cache warm', 2)]

    batch = cfg.train_dataloader.batch_size
    table = PrettyTable(['run', 'epoch', 'it/s', 'images encoded', 'speed-up vs (a)',
                         'max |loss - (a)|'])
    for name, epoch in rows:
        speed, losses, encoded = (cached if name[1] != 'a' else uncached)[epoch - 1]
        ref_speed, ref_losses, _ = uncached[epoch - 1]
        diff = max(abs(a - b) for a, b in zip(losses, ref_losses))
        table.add_row([name, epoch, f'{speed:.2f}', f'{encoded} / {len(losses) * batch}',
                       f'{speed / ref_speed:.2f}x', f'{diff:.3g}'])
    print(f'Training speed, {args.iters} timed iterations per epoch after {args.warmup} '
          f'warm-up, batch {batch}, on {device}:')
    print(table)
    if cached is None:
        print(f'The embedding cache cannot apply: {reason}. Only (a) was measured.')
        return dict(uncached=uncached, reason=reason)
    print(f'Speed-up of the warm cache (c) over no cache (a): '
          f'{cached[1][0] / uncached[1][0]:.2f}x; cache: {cache.hits} hits, '
          f'{cache.misses} misses')
    return dict(uncached=uncached, cached=cached, hits=cache.hits, misses=cache.misses)


def benchmark_infer(cfg, args, seed, device):
    model = build_model(cfg, seed, device)
    model.eval()
    loader_cfg = cfg.test_dataloader
    loader = subset_loader(loader_cfg, (args.warmup + args.iters) * loader_cfg.batch_size, seed)
    counter = EncoderCounter(model.backbone)
    if model.test_cfg is None:
        model.test_cfg = {}
    table = PrettyTable(['M', 'images/s', 'ms/image', 'encoder passes per image', 'note'])
    results = {}

    def step(batch):
        with torch.no_grad():
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
            table.add_row([m, '-', '-', '-', note])
            results[m] = None
            continue
        timed_images = sum(per_batch[args.warmup:])
        img_speed = speed * timed_images / max(len(per_batch) - args.warmup, 1)
        passes = counter.images / max(sum(per_batch), 1)
        table.add_row([m, f'{img_speed:.2f}', f'{1000 / img_speed:.1f}', f'{passes:.2f}', ''])
        results[m] = dict(images_per_s=img_speed, passes_per_image=passes)
    counter.handle.remove()
    print(f'Inference speed, {args.iters} timed batches after {args.warmup} warm-up, batch '
          f'{loader_cfg.batch_size}, on {device}:')
    print(table)
    return results


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=True)
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

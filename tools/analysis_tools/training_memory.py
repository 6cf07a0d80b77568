"""Peak memory of one SAMed LoRA training step, with and without activation checkpointing.

    python tools/analysis_tools/training_memory.py --arch vit_h --img-size 1024 --dtype bf16

Each variant runs in a fresh Python process (the peak of a process cannot be reset): it builds
``benchmark.py``'s SAMed model (random weights, LoRA r=4 on q and v, frozen encoder), runs one
untimed step, then one timed step, and reports the memory the step added on top of the built
model. On CUDA that is ``torch.cuda.max_memory_allocated`` minus the allocation before the
step; on CPU it is the growth of the process's peak resident set (``ru_maxrss``, Linux) over
the built model during the two steps, which also holds the allocator's cache, so read it as an
upper bound. ``activation_checkpointing`` recomputes each encoder block in the backward pass
(about one more forward) instead of keeping its activations.
"""
import argparse
import json
import os.path as osp
import resource
import subprocess
import sys
import time

from prettytable import PrettyTable

GIB = 1024 ** 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='vit_h', help='vit_b, vit_l, vit_h or a JSON dict')
    parser.add_argument('--img-size', type=int, default=1024)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--dtype', choices=['fp32', 'bf16', 'fp16'], default='bf16',
                        help='bf16 / fp16 through mmsam AmpOptimWrapper (autocast)')
    parser.add_argument('--device', default=None, help='cpu or cuda (default: cuda if any)')
    parser.add_argument('--variant', choices=['off', 'on'],
                        help='internal: measure this one variant and print it as JSON')
    args = parser.parse_args(argv)
    if args.arch.startswith('{'):
        try:
            args.arch = json.loads(args.arch)
        except json.JSONDecodeError as err:
            parser.error(f'--arch {args.arch}: not valid JSON ({err})')
    return args


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def one_variant(args, checkpointing):
    """In the child process: build, warm up, measure one step; returns a result dict."""
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import set_random_seed

    import benchmark
    from mmsam.registry import MODELS
    from mmsam.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    model_cfg, optimizer = benchmark.samed_step_model(args.arch, args.img_size, 'fused')
    model_cfg.backbone.activation_checkpointing = checkpointing
    set_random_seed(0)
    model = MODELS.build(model_cfg).to(device).train()
    wrapper = dict(type='OptimWrapper', optimizer=optimizer) if args.dtype == 'fp32' else \
        dict(type='AmpOptimWrapper', optimizer=optimizer,
             dtype=benchmark.AMP_DTYPES[args.dtype])
    wrapper = build_optim_wrapper(model, wrapper)
    batch = benchmark.synthetic_batch(args.img_size, args.batch_size,
                                      model_cfg.decode_head.num_classes, 0)
    rss_built = peak_rss_bytes()
    model.train_step(batch, wrapper)  # creates the optimizer state and the LoRA gradients
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    start = time.perf_counter()
    loss = float(model.train_step(batch, wrapper)['loss'].detach())
    if device.type == 'cuda':
        torch.cuda.synchronize()
        step_bytes = torch.cuda.max_memory_allocated() - before
    else:
        step_bytes = peak_rss_bytes() - rss_built
    return dict(seconds=time.perf_counter() - start, step_bytes=step_bytes, loss=loss,
                device=str(device), threads=torch.get_num_threads())


def run_variant(argv, checkpointing):
    """This script in a fresh Python process for one variant; its result dict."""
    cmd = [sys.executable, osp.abspath(__file__), *argv, '--variant',
           'on' if checkpointing else 'off']
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'the step with activation_checkpointing={checkpointing} failed (exit '
                         f'code {proc.returncode}; -9 often means out of memory: try a smaller '
                         f'--img-size or --arch):\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.variant is not None:
        print(json.dumps(one_variant(args, args.variant == 'on')))
        return None
    results = {ckpt: run_variant(argv, ckpt) for ckpt in (False, True)}
    base = results[False]
    table = PrettyTable(['activation_checkpointing', 'step memory GiB', 'vs off', 's/step',
                         'loss'])
    for ckpt, res in results.items():
        table.add_row([ckpt, f"{res['step_bytes'] / GIB:.2f}",
                       f"{res['step_bytes'] / max(base['step_bytes'], 1):.2f}x",
                       f"{res['seconds']:.1f}", f"{res['loss']:.6f}"])
    what = 'peak allocated' if base['device'].startswith('cuda') else 'peak RSS growth'
    print(f'SAMed LoRA step memory ({what}), {args.arch} at {args.img_size} x {args.img_size}, '
          f"batch {args.batch_size}, {args.dtype}, on {base['device']} "
          f"({base['threads']} threads):")
    print(table)
    return results


if __name__ == '__main__':
    main()

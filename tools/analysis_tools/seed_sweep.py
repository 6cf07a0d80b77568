"""Train and test one config over several seeds; write the mean +- std of every test metric.

    python tools/analysis_tools/seed_sweep.py configs/hsam/hsam_vit-tiny_synthetic-abdomen.py \
        --seeds 0 1 2 --out configs/hsam/results/hsam_vit-tiny_synthetic-abdomen.json

Each seed is a separate ``tools/train.py`` + ``tools/test.py`` run with
``--cfg-options randomness.seed=S`` in ``<work-dir-root>/<config name>/seed<S>`` (a seed whose
test result is already there is reused with ``--resume-seeds``). The data stay the same: the
synthetic generators have their own fixed seeds, so only the training randomness changes.

The JSON written to ``--out`` holds the per-seed metrics, their mean and sample standard
deviation (ddof = 1), and how they were made (commit, thread count, torch, CPU), so that a
README table can say exactly where its numbers come from. ``--markdown`` prints the table
rows. ``tools/analysis_tools/compare_results.py --reference OUT.json`` prints a new run next
to such a reference; ``--paired A.json B.json`` prints per-class differences of two sweeps
paired by seed and marks the classes where every seed agrees on the sign.
"""
import argparse
import datetime
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys

from mmsam.evaluation.saved_results import latest_result

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def mean_std(values):
    """Mean and sample standard deviation (ddof = 1; 0.0 for one value) of a list of floats."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def aggregate(runs):
    """``{seed: {metric: value}}`` -> ``(mean, std)`` dicts over the metrics all runs share."""
    seeds = list(runs)
    keys = [k for k, v in runs[seeds[0]].items() if isinstance(v, (int, float))
            and not isinstance(v, bool) and all(k in runs[s] for s in seeds)]
    stats = {k: mean_std([float(runs[s][k]) for s in seeds]) for k in keys}
    return {k: m for k, (m, _) in stats.items()}, {k: s for k, (_, s) in stats.items()}


def provenance():
    """Where the numbers come from: commit (and whether the tree was dirty), threads, versions."""
    def git(*args):
        try:
            return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name')), cpu)
    except OSError:
        pass
    status = git('status', '--porcelain', '--untracked-files=no')
    return dict(commit=git('rev-parse', 'HEAD'), dirty=bool(status),
                omp_num_threads=os.environ.get('OMP_NUM_THREADS', 'default'),
                torch_threads=torch.get_num_threads(), torch=torch.__version__, cpu=cpu,
                date=datetime.date.today().isoformat())


def run_seed(config, seed, work_dir, cfg_options):
    """Train then test ``config`` with ``randomness.seed=seed`` in ``work_dir``."""
    options = ['--cfg-options', f'randomness.seed={seed}', *cfg_options]
    train = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
             '--work-dir', work_dir, *options]
    print(f'[seed_sweep] seed {seed}: training in {work_dir}', flush=True)
    subprocess.run(train, check=True)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    test = [sys.executable, osp.join(ROOT, 'tools', 'test.py'), config, checkpoint,
            '--work-dir', work_dir, *options]
    subprocess.run(test, check=True)


def markdown_rows(summary):
    """Table rows ``| class | Dice mean +- std | HD95 mean +- std |`` or one set-metric row."""
    mean, std = summary['mean'], summary['std']
    fmt = '{:.2f} +- {:.2f}'.format
    if 'GED' in mean:
        keys = [k for k in ('GED', 'D_avg', 'D_max', 'diversity') if k in mean]
        return ['| ' + ' | '.join(k for k in keys) + ' |',
                '| ' + ' | '.join(('{:.4f} +- {:.4f}' if k in ('GED', 'diversity') else
                                   '{:.2f} +- {:.2f}').format(mean[k], std[k])
                                  for k in keys) + ' |']
    classes = [k[len('Dice.'):] for k in mean if k.startswith('Dice.')]
    rows = ['| class | Dice (%) | HD95 |', '|---|---|---|']
    for cls in classes + ['mean']:
        dice, hd = ('mDice', 'mHD95') if cls == 'mean' else (f'Dice.{cls}', f'HD95.{cls}')
        rows.append(f'| {cls} | {fmt(mean[dice], std[dice])} | '
                    f'{fmt(mean[hd], std[hd]) if hd in mean else "-"} |')
    return rows


def paired_differences(a, b):
    """Per-metric differences ``a - b`` of two sweeps over their common seeds.

    Returns:
        dict[str, dict]: metric -> ``mean``, ``std`` (of the per-seed differences), ``seeds``
        and ``consistent`` (every seed's difference has the same non-zero sign).
    """
    seeds = [s for s in a['runs'] if s in b['runs']]
    if len(seeds) < 2:
        raise ValueError(f'--paired needs at least two seeds in common; {a["config"]} has '
                         f'{list(a["runs"])}, {b["config"]} has {list(b["runs"])}')
    out = {}
    for key in a['mean']:
        if key not in b['mean']:
            continue
        diffs = [a['runs'][s][key] - b['runs'][s][key] for s in seeds]
        m, s = mean_std(diffs)
        out[key] = dict(mean=m, std=s, seeds=seeds,
                        consistent=all(d > 0 for d in diffs) or all(d < 0 for d in diffs))
    return out


def load_summary(path):
    """A sweep JSON written by this tool; errors name the file."""
    try:
        with open(path) as f:
            summary = json.load(f)
    except OSError as err:
        raise SystemExit(f'seed_sweep: cannot read {path}: {err.strerror}')
    except ValueError as err:
        raise SystemExit(f'seed_sweep: {path} is not valid JSON ({err})')
    if not isinstance(summary, dict) or not {'runs', 'mean', 'std'} <= set(summary):
        raise SystemExit(f'seed_sweep: {path} is not a seed-sweep summary (no runs/mean/std); '
                         'make one with tools/analysis_tools/seed_sweep.py CONFIG --out FILE')
    return summary


def print_paired(path_a, path_b):
    a, b = load_summary(path_a), load_summary(path_b)
    diffs = paired_differences(a, b)
    print(f'{osp.basename(path_a)} - {osp.basename(path_b)}, paired by seed '
          f'({", ".join(map(str, next(iter(diffs.values()))["seeds"]))}); '
          '* = every seed has the same sign')
    for key, d in diffs.items():
        if key.startswith(('Dice.', 'HD95.')) or key in ('mDice', 'mHD95', 'GED', 'D_avg',
                                                           'D_max', 'diversity'):
            mark = '*' if d['consistent'] else ' '
            print(f'  {key:24s} {d["mean"]:+8.2f} +- {d["std"]:.2f} {mark}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir-root', default=osp.join('work_dirs', 'seeds'))
    parser.add_argument('--out', help='the summary JSON to write')
    parser.add_argument('--resume-seeds', action='store_true',
                        help='reuse a seed whose work dir already holds a test result')
    parser.add_argument('--markdown', action='store_true', help='print markdown table rows')
    parser.add_argument('--paired', nargs=2, metavar=('A.json', 'B.json'),
                        help='print per-metric differences A - B of two summaries and exit')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed to tools/train.py and tools/test.py after the seed')
    args = parser.parse_args(argv)
    if args.paired:
        print_paired(*args.paired)
        return
    if not args.config:
        parser.error('give a CONFIG (or --paired A.json B.json)')
    if not osp.isfile(args.config):
        parser.error(f'config {args.config}: no such file')
    name = osp.splitext(osp.basename(args.config))[0]
    runs = {}
    for seed in args.seeds:
        work_dir = osp.join(args.work_dir_root, name, f'seed{seed}')
        try:
            runs[str(seed)] = latest_result(work_dir) if args.resume_seeds else None
        except FileNotFoundError:
            runs[str(seed)] = None
        if runs[str(seed)] is None:
            run_seed(args.config, seed, work_dir, args.cfg_options)
            runs[str(seed)] = latest_result(work_dir)
    mean, std = aggregate(runs)
    summary = dict(config=args.config, seeds=args.seeds, cfg_options=args.cfg_options,
                   provenance=provenance(), mean=mean, std=std, runs=runs)
    if args.out:
        if osp.dirname(args.out):
            os.makedirs(osp.dirname(args.out), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(summary, f, indent=1)
        print(f'[seed_sweep] summary of seeds {args.seeds}: {args.out}')
    for row in markdown_rows(summary) if args.markdown else []:
        print(row)
    return summary


if __name__ == '__main__':
    main()

"""Print the latest test results of several work dirs side by side.

    python tools/analysis_tools/compare_results.py work_dirs/samed_x work_dirs/hsam_x
    python tools/analysis_tools/compare_results.py work_dirs/medsam_y work_dirs/seqsam_y

Each work dir's newest ``<timestamp>/<timestamp>.json`` (written by ``tools/test.py``) is
read. Dice/HD95 results (``VolumeDiceHD95Metric``): rows are the classes, columns Dice (%) and
HD95 for each run. Set metrics (``GEDMetric``): one row per run with GED, D_avg (%), D_max (%)
and diversity.
"""
import argparse
import glob
import json
import os.path as osp

from prettytable import PrettyTable


def latest_result(work_dir):
    """The newest test-metrics json of a work dir, as a dict."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                   key=lambda p: osp.basename(osp.dirname(p)))
    files = [f for f in files if osp.basename(f) != 'scalars.json']
    if not files:
        raise FileNotFoundError(f'no test results (<timestamp>/<timestamp>.json) under '
                                f'{work_dir}; run tools/test.py with --work-dir {work_dir}')
    with open(files[-1]) as f:
        return json.load(f)


def comparison_table(results):
    """A PrettyTable of per-class Dice/HD95 for ``{run name: metrics dict}``."""
    names = list(results)
    classes = [k[len('Dice.'):] for k in results[names[0]] if k.startswith('Dice.')]
    table = PrettyTable(['class'] + [f'{n} {m}' for n in names for m in ('Dice', 'HD95')])
    for cls in classes + ['mean']:
        dice_key, hd_key = ('mDice', 'mHD95') if cls == 'mean' else (f'Dice.{cls}',
                                                                      f'HD95.{cls}')
        table.add_row([cls] + [f'{results[n][k]:.2f}' for n in names for k in (dice_key, hd_key)])
    return table


SET_METRICS = ('GED', 'D_avg', 'D_max', 'diversity')


def set_metric_table(results):
    """A PrettyTable with one row of GED, D_avg, D_max, diversity per run."""
    table = PrettyTable(['run', 'GED', 'D_avg (%)', 'D_max (%)', 'diversity'])
    for name, metrics in results.items():
        table.add_row([name] + [f'{metrics[k]:.4f}' if k in ('GED', 'diversity') else
                                f'{metrics[k]:.2f}' for k in SET_METRICS])
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+')
    args = parser.parse_args(argv)
    names = [osp.basename(osp.normpath(w)) for w in args.work_dirs]
    # Drop the suffix all names share (e.g. '_vit-tiny_synthetic-abdomen') to keep columns short.
    suffix = osp.commonprefix([n[::-1] for n in names])[::-1] if len(names) > 1 else ''
    suffix = suffix[suffix.find('_'):] if '_' in suffix else ''
    results = {(n[:-len(suffix)] if suffix and n != suffix else n): latest_result(w)
               for n, w in zip(names, args.work_dirs)}
    if all('GED' in r for r in results.values()):
        table = set_metric_table(results)
    else:
        table = comparison_table(results)
    print(table)
    return table


if __name__ == '__main__':
    main()

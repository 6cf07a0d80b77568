"""Print the latest test results of several work dirs side by side.

    python tools/analysis_tools/compare_results.py work_dirs/samed_x work_dirs/hsam_x
    python tools/analysis_tools/compare_results.py work_dirs/medsam_y work_dirs/seqsam_y
    python tools/analysis_tools/compare_results.py work_dirs/samed_x work_dirs/hsam_x \
        --plot dice.png --paper H-SAM=hsam_paper.json

Each work dir's newest ``<timestamp>/<timestamp>.json`` (written by ``tools/test.py``) is
read. Dice/HD95 results (``VolumeDiceHD95Metric``): rows are the classes, columns Dice (%) and
HD95 for each run. Set metrics (``GEDMetric``): one row per run with GED, D_avg (%), D_max (%)
and diversity.

``--plot OUT.png`` also draws the per-class Dice (%) of the runs as a grouped bar chart (one
group per class and one for the mean, one bar per run). ``--paper NAME=FILE.json`` adds a
published result as another series: ``FILE.json`` maps class names to Dice (%), e.g.
``{"spleen": 87.9, "gallbladder": 71.6, "mean": 81.0}``; classes it lacks get no bar.

``--reference SUMMARY.json ...`` (written by ``tools/analysis_tools/seed_sweep.py``) adds, for
the run of the same config, the reference's mean +- std over its seeds next to the run's own
numbers, and says where the run falls outside mean +- 2 std. ``make demo`` does this with the
summaries under ``configs/<method>/results/``.
"""
import argparse
import json
import os
import os.path as osp

from prettytable import PrettyTable

from mmsam.evaluation.saved_results import latest_result

# One bar chart size rule, so that the picture grows with the classes and series it shows.
PLOT_DPI = 100
PLOT_HEIGHT_IN = 4.8


def _with_reference(value, key, reference):
    """``'71.20'`` or, with a reference summary, ``'71.20 (68.9+-1.8)'``, ``!`` outside 2 std."""
    if reference is None or key not in reference['mean']:
        return f'{value:.2f}'
    mean, std = reference['mean'][key], reference['std'][key]
    flag = '!' if abs(value - mean) > 2 * std else ''
    return f'{value:.2f} ({mean:.1f}+-{std:.1f}){flag}'


def comparison_table(results, references=None):
    """A PrettyTable of per-class Dice/HD95 for ``{run name: metrics dict}``; a run with an
    entry in ``references`` (run name -> seed-sweep summary) shows its reference in brackets."""
    references = references or {}
    names = list(results)
    classes = [k[len('Dice.'):] for k in results[names[0]] if k.startswith('Dice.')]
    table = PrettyTable(['class'] + [f'{n} {m}' for n in names for m in ('Dice', 'HD95')])
    for cls in classes + ['mean']:
        dice_key, hd_key = ('mDice', 'mHD95') if cls == 'mean' else (f'Dice.{cls}',
                                                                      f'HD95.{cls}')
        table.add_row([cls] + [_with_reference(results[n][k], k, references.get(n))
                               for n in names for k in (dice_key, hd_key)])
    return table


def read_references(paths, work_dirs, run_names):
    """Match seed-sweep summaries to runs by config name (the work dir's name).

    Returns:
        dict[str, dict]: run name -> summary. Raises ValueError naming a summary that is not
        one or matches no run.
    """
    by_dir = {osp.basename(osp.normpath(w)): n for w, n in zip(work_dirs, run_names)}
    references = {}
    for path in paths:
        try:
            with open(path) as f:
                summary = json.load(f)
        except (OSError, ValueError) as err:
            raise ValueError(f'--reference {path}: cannot read it ({err})') from err
        if not isinstance(summary, dict) or not {'config', 'mean', 'std'} <= set(summary):
            raise ValueError(f'--reference {path}: not a seed-sweep summary (no config/mean/'
                             'std); make one with tools/analysis_tools/seed_sweep.py')
        config = osp.splitext(osp.basename(summary['config']))[0]
        if config not in by_dir:
            raise ValueError(f'--reference {path} is for {config}, which is none of the runs '
                             f'({", ".join(by_dir)})')
        references[by_dir[config]] = summary
    return references


def describe_references(references):
    """One line per reference: seeds, commit, threads and CPU it was measured with."""
    lines = []
    for name, summary in references.items():
        prov = summary.get('provenance', {})
        lines.append(f'{name}: reference (in brackets, or the row below) = mean+-std over seeds {summary.get("seeds")} '
                     f'(commit {str(prov.get("commit"))[:7]}, OMP_NUM_THREADS='
                     f'{prov.get("omp_num_threads")}, {prov.get("cpu")}); ! = this run is '
                     'outside 2 std of it (float kernels and thread counts differ between '
                     'machines, so a run is not expected to repeat a number exactly)')
    return lines


SET_METRICS = ('GED', 'D_avg', 'D_max', 'diversity')


def set_metric_table(results, references=None):
    """A PrettyTable with one row of GED, D_avg, D_max, diversity per run, and below a run with
    a reference (run name -> seed-sweep summary) a row of the reference's mean +- std."""
    references = references or {}
    table = PrettyTable(['run', 'GED', 'D_avg (%)', 'D_max (%)', 'diversity'])
    for name, metrics in results.items():
        table.add_row([name] + [f'{metrics[k]:.4f}' if k in ('GED', 'diversity') else
                                f'{metrics[k]:.2f}' for k in SET_METRICS])
        ref = references.get(name)
        if ref is not None:
            table.add_row([f'  reference, {len(ref.get("seeds", []))} seeds'] + [
                (f'{ref["mean"][k]:.4f}+-{ref["std"][k]:.4f}' if k in ('GED', 'diversity')
                 else f'{ref["mean"][k]:.2f}+-{ref["std"][k]:.2f}') if k in ref['mean']
                else '-' for k in SET_METRICS])
    return table


def read_paper(spec):
    """``NAME=FILE.json`` -> ``(NAME, {class: Dice})``; errors name the file and what is wrong."""
    name, sep, path = spec.partition('=')
    if not sep or not name or not path:
        raise ValueError(f'--paper {spec}: expected NAME=FILE.json, e.g. H-SAM=hsam_paper.json')
    if not osp.isfile(path):
        raise ValueError(f'--paper {spec}: {path}: no such file')
    try:
        with open(path) as f:
            values = json.load(f)
    except ValueError as err:
        raise ValueError(f'--paper {spec}: {path} is not valid JSON ({err})') from err
    if not isinstance(values, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
        raise ValueError(f'--paper {spec}: {path} must hold one JSON object of class name -> '
                         'Dice (%), e.g. {"spleen": 87.9, "mean": 81.0}')
    return name, {str(k): float(v) for k, v in values.items()}


def plot_size(num_groups, num_series):
    """Figure size in inches (width, height) of a bar chart of ``num_groups`` x ``num_series``."""
    return max(6.0, 1.5 + num_groups * (0.22 * num_series + 0.35)), PLOT_HEIGHT_IN


def plot_dice_bars(results, papers, out_file):
    """Write a grouped bar chart of per-class Dice (%): one group per class (and the mean),
    one bar per run and per paper.

    Args:
        results (dict[str, dict]): run name -> test metrics (``Dice.<class>``, ``mDice``).
        papers (dict[str, dict]): paper name -> {class (or ``'mean'``): Dice (%)}.
        out_file (str): the PNG to write (its folder is created).

    Returns:
        dict: ``classes`` (the groups), ``series`` (names, runs first) and ``bars`` (number of
        bars drawn).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    classes = [k[len('Dice.'):] for k in results[names[0]] if k.startswith('Dice.')]
    if not classes:
        raise ValueError('--plot draws per-class Dice: the results have no Dice.<class> keys '
                         f'(they have {", ".join(results[names[0]])})')
    groups = classes + ['mean']
    for paper, values in papers.items():
        unknown = [c for c in values if c not in groups]
        if unknown:
            raise ValueError(f'--paper {paper}: classes {unknown} are not in the runs\' '
                             f'results; the classes are {groups}')
    series = [(n, [results[n].get(f'Dice.{c}') if c != 'mean' else results[n].get('mDice')
                   for c in groups], 'run') for n in names]
    series += [(p, [values.get(c) for c in groups], 'paper') for p, values in papers.items()]

    fig, ax = plt.subplots(figsize=plot_size(len(groups), len(series)), dpi=PLOT_DPI)
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    bars = 0
    for index, (name, values, kind) in enumerate(series):
        drawn = [(i, v) for i, v in enumerate(values) if v is not None]
        if not drawn:
            continue
        positions = x[[i for i, _ in drawn]] - 0.4 + (index + 0.5) * width
        ax.bar(positions, [v for _, v in drawn], width, label=name,
               hatch='//' if kind == 'paper' else None,
               edgecolor='black' if kind == 'paper' else None, linewidth=0.5)
        bars += len(drawn)
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=30, ha='right')
    ax.set_ylabel('Dice (%)')
    ax.set_ylim(0, 100)
    ax.grid(axis='y', alpha=0.3)
    ax.set_axisbelow(True)
    # Above the axes, so that it never hides a bar.
    ax.legend(fontsize='small', ncol=min(len(series), 6), loc='lower left',
              bbox_to_anchor=(0.0, 1.01), frameon=False,
              title='Dice per class' + (' (hatched: published)' if papers else ''),
              title_fontsize='small', alignment='left')
    fig.tight_layout()
    if osp.dirname(out_file):
        os.makedirs(osp.dirname(out_file), exist_ok=True)
    fig.savefig(out_file, dpi=PLOT_DPI)
    plt.close(fig)
    return dict(classes=groups, series=[s[0] for s in series], bars=bars)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--plot', metavar='OUT.png',
                        help='also write a per-class Dice bar chart of the runs to OUT.png')
    parser.add_argument('--paper', nargs='+', action='extend', default=[],
                        metavar='NAME=FILE.json',
                        help='published results to draw next to the runs (with --plot): '
                        'a JSON object of class -> Dice (%%)')
    parser.add_argument('--reference', nargs='+', action='extend', default=[],
                        metavar='SUMMARY.json',
                        help='seed-sweep summaries (tools/analysis_tools/seed_sweep.py) to '
                        'print next to the run of the same config')
    args = parser.parse_args(argv)
    if args.paper and not args.plot:
        parser.error('--paper needs --plot OUT.png (the published numbers are drawn, not '
                     'printed)')
    try:
        papers = dict(read_paper(spec) for spec in args.paper)
    except ValueError as err:
        parser.error(str(err))
    names = [osp.basename(osp.normpath(w)) for w in args.work_dirs]
    # Drop the suffix all names share (e.g. '_vit-tiny_synthetic-abdomen') to keep columns short.
    suffix = osp.commonprefix([n[::-1] for n in names])[::-1] if len(names) > 1 else ''
    suffix = suffix[suffix.find('_'):] if '_' in suffix else ''
    results = {(n[:-len(suffix)] if suffix and n != suffix else n): latest_result(w)
               for n, w in zip(names, args.work_dirs)}
    try:
        references = read_references(args.reference, args.work_dirs, list(results))
    except ValueError as err:
        parser.error(str(err))
    if all('GED' in r for r in results.values()):
        table = set_metric_table(results, references)
    else:
        table = comparison_table(results, references)
    print(table)
    for line in describe_references(references):
        print(line)
    if args.plot:
        if all('GED' in r for r in results.values()):
            parser.error('--plot draws per-class Dice; these are set metrics (GED, D_avg): '
                         'compare them in the table')
        try:
            plot_dice_bars(results, papers, args.plot)
        except ValueError as err:
            parser.error(str(err))
        print(f'bar chart: {args.plot}')
    return table


if __name__ == '__main__':
    main()

"""Training curves of one or more work dirs: loss and metrics vs iteration, one panel per key.

    python tools/analysis_tools/plot_curves.py work_dirs/hsam_vit-tiny_synthetic-abdomen \
        --out curves.png
    python tools/analysis_tools/plot_curves.py work_dirs/samed_x work_dirs/hsam_x \
        --keys loss decode.loss_dice mDice --out curves.png

Reads every ``<timestamp>/vis_data/scalars.json`` of each work dir (what ``tools/train.py``
writes through mmengine's ``LocalVisBackend``: one JSON line per logging step with ``iter``,
and after each validation one line of metrics whose ``step`` is the iteration). The folders
are read in time order, so a resumed run continues its curve; where two runs logged the same
iteration, the later one is drawn. Test runs (``tools/test.py``) write no scalars and are
skipped.

Without ``--keys``: ``loss``, ``decode.loss_dice`` and ``mDice``, those the logs have.
"""
import argparse
import glob
import json
import os
import os.path as osp

DEFAULT_KEYS = ('loss', 'decode.loss_dice', 'mDice')
PLOT_DPI = 100
PANEL_SIZE_IN = (7.0, 2.6)  # width, height of one panel


def read_scalars(work_dir):
    """All logged scalars of a work dir, by key.

    Args:
        work_dir (str): a training work dir (holding ``<timestamp>/vis_data/scalars.json``).

    Returns:
        dict[str, list[tuple[int, float]]]: key -> (iteration, value) sorted by iteration.

    Raises:
        FileNotFoundError: the work dir has no scalars.json.
    """
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                   key=lambda p: osp.basename(osp.dirname(osp.dirname(p))))
    if not files:
        raise FileNotFoundError(
            f'{work_dir}: no training logs (<timestamp>/vis_data/scalars.json); give the '
            '--work-dir of a tools/train.py run')
    by_key = {}
    for path in files:
        with open(path) as f:
            lines = f.read().splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                if number == len(lines):
                    continue  # the last line of a run killed while writing it
                raise ValueError(f'{path} line {number}: not JSON ({err})') from err
            step = record.get('iter', record.get('step'))
            if step is None:
                continue
            # A validation line (no 'iter') also logs the validation loop's time/data_time,
            # which would overwrite the training iteration's at the same step.
            skip = ('iter', 'step', 'epoch') + (() if 'iter' in record else
                                                 ('time', 'data_time'))
            for key, value in record.items():
                if key in skip or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                by_key.setdefault(key, {})[int(step)] = float(value)
    return {key: sorted(points.items()) for key, points in by_key.items()}


def run_names(work_dirs):
    """Legend names: each work dir's folder name, with the suffix all of them share dropped."""
    names = [osp.basename(osp.normpath(w)) for w in work_dirs]
    suffix = osp.commonprefix([n[::-1] for n in names])[::-1] if len(names) > 1 else ''
    suffix = suffix[suffix.find('_'):] if '_' in suffix else ''
    return [n[:-len(suffix)] if suffix and n != suffix else n for n in names]


def plot_size(num_panels):
    """Figure size in inches (width, height) for ``num_panels`` stacked panels."""
    return PANEL_SIZE_IN[0], PANEL_SIZE_IN[1] * num_panels + 0.4


def plot_curves(runs, keys, out_file):
    """Write one panel per key (value vs iteration), one line per run.

    Args:
        runs (dict[str, dict]): run name -> :func:`read_scalars` output.
        keys (Sequence[str]): the scalars to draw, e.g. ``('loss', 'mDice')``.
        out_file (str): the PNG to write (its folder is created).

    Returns:
        dict[str, dict[str, int]]: key -> run name -> number of points drawn.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(keys), 1, figsize=plot_size(len(keys)), dpi=PLOT_DPI,
                             sharex=True, squeeze=False)
    drawn = {}
    for ax, key in zip(axes[:, 0], keys):
        drawn[key] = {}
        for name, scalars in runs.items():
            points = scalars.get(key, [])
            if not points:
                continue
            xs, ys = zip(*points)
            # Validation metrics come every few thousand iterations: mark each point.
            ax.plot(xs, ys, label=name, marker='o' if len(points) <= 50 else None,
                    markersize=3, linewidth=1.2)
            drawn[key][name] = len(points)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize='small')
    axes[-1, 0].set_xlabel('iteration')
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    if osp.dirname(out_file):
        os.makedirs(osp.dirname(out_file), exist_ok=True)
    fig.savefig(out_file, dpi=PLOT_DPI)
    plt.close(fig)
    return drawn


def choose_keys(runs, keys):
    """The keys to draw: ``keys`` (each must be in some run's logs) or the default ones found.

    Raises:
        ValueError: a requested key no run logged, or none of the default keys is logged.
    """
    logged = sorted({k for scalars in runs.values() for k in scalars})
    if keys:
        missing = [k for k in keys if k not in logged]
        if missing:
            raise ValueError(f'--keys {" ".join(missing)}: not in the logs; they have '
                             f'{", ".join(logged)}')
        return list(keys)
    found = [k for k in DEFAULT_KEYS if k in logged]
    if not found:
        raise ValueError(f'none of {", ".join(DEFAULT_KEYS)} is in the logs; choose with '
                         f'--keys among {", ".join(logged)}')
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='training work dirs (one line per work dir in each panel)')
    parser.add_argument('--keys', nargs='+',
                        help=f'scalars to draw (default: those of {" ".join(DEFAULT_KEYS)} '
                        'that were logged)')
    parser.add_argument('--out', required=True, metavar='OUT.png', help='the PNG to write')
    args = parser.parse_args(argv)
    try:
        runs = {name: read_scalars(w) for name, w in zip(run_names(args.work_dirs),
                                                         args.work_dirs)}
        keys = choose_keys(runs, args.keys)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    drawn = plot_curves(runs, keys, args.out)
    print(f'curves of {", ".join(keys)}: {args.out}')
    return drawn


if __name__ == '__main__':
    main()

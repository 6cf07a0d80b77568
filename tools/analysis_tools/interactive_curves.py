"""DSC / NSD vs clicks under the CVPR25 interactive protocol, per method and simulated user.

    python tools/analysis_tools/interactive_curves.py \
        --run MedSAM configs/medsam/medsam_vit-tiny_synthetic-lesion.py CKPT_SEED0 CKPT_SEED1 ... \
        --run SAM-MCL configs/sam_mcl/sam-mcl_vit-tiny_synthetic-lesion.py CKPT ... \
        --users error suggestion --seeds 0 1 2 --num-clicks 5 \
        --out-dir docs/interactive --pictures 2

Each ``--run NAME CONFIG CHECKPOINT...`` is tested once per seed and user: the model runs the
protocol itself (``model.test_cfg.interactive=dict(num_clicks, user, seed)``, the encoder once
per image) and :class:`InteractiveProtocolMetric` scores every step. With one checkpoint per
seed, seed ``i`` tests checkpoint ``i`` (training seeds); with a single checkpoint every seed
tests it. The seed is also the test draw: ``BoxPromptFromAnnotation(seed=...)`` (which reader's
mask is the target, on multi-reader data) and the protocol's tie breaks.

Writes ``<out-dir>/interactive_curves.json`` (per run: the metrics of every seed, their mean and
sample std), ``interactive_curves.png`` (DSC and NSD vs clicks, mean +- std over seeds; solid:
users who click at the largest error, dashed: users who click at the suggestion) and a markdown
table on stdout (``--merge`` adds the runs of earlier JSON files); with ``--pictures K``, ``<out-dir>/steps_<name>_<user>_<k>.png`` for the first
K test images of the first seed (:func:`render_interactive_steps`).
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.runner import Runner

from mmsam.apis import init_model
from mmsam.evaluation.metrics import InteractiveProtocolMetric
from mmsam.visualization.interactive_steps import render_interactive_steps

USER_STYLES = {'error': '-', 'suggestion': '--'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--run', nargs='+', action='append', default=[],
                        metavar='NAME CONFIG CHECKPOINT', help='a method: name, config, '
                        'checkpoint(s) (one, or one per seed)')
    parser.add_argument('--users', nargs='+', default=['error', 'suggestion'],
                        choices=['error', 'suggestion'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--num-clicks', type=int, default=5)
    parser.add_argument('--nsd-tolerance', type=float, default=2.0,
                        help='NSD tolerance (spacing units, else pixels)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--pictures', type=int, default=0, help='step pictures per method/user')
    parser.add_argument('--picture-size', type=int, default=128,
                        help='smallest panel side of the step pictures, pixels')
    parser.add_argument('--max-images', type=int, default=None, help='test only the first N')
    parser.add_argument('--merge', nargs='+', default=[], metavar='JSON',
                        help='earlier interactive_curves.json files whose runs join the plot '
                        'and table (e.g. methods run one at a time)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides for every config, e.g. test_dataloader.dataset.data_root')
    return parser.parse_args(argv)


def check_runs(runs, seeds):
    """[(name, config, [checkpoints])], each checkpoint list of length 1 or len(seeds)."""
    checked = []
    for run in runs:
        if len(run) < 3:
            raise SystemExit(f'--run {" ".join(run)}: give NAME CONFIG CHECKPOINT [...]')
        name, config, checkpoints = run[0], run[1], run[2:]
        if len(checkpoints) not in (1, len(seeds)):
            raise SystemExit(f'--run {name}: {len(checkpoints)} checkpoints for {len(seeds)} '
                             'seeds; give one, or one per seed')
        for path in [config] + checkpoints:
            if not osp.isfile(path):
                raise SystemExit(f'--run {name}: no file {path}')
        checked.append((name, config, checkpoints))
    return checked


def protocol_config(config, user, seed, args):
    """The config with the protocol, the seeded test draw and a single-process loader."""
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.model.setdefault('test_cfg', {})
    cfg.model.test_cfg['interactive'] = dict(num_clicks=args.num_clicks, user=user, seed=seed,
                                             keep_agreement=True)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'BoxPromptFromAnnotation':
            step['seed'] = seed
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    return cfg


def picture_of(batch_input, sample):
    """The sample's image (H, W, 3) uint8 at its original size (from the packed input)."""
    image = batch_input.permute(1, 2, 0).cpu().numpy()
    h, w = sample.img_shape[:2]
    image = np.ascontiguousarray(image[:h, :w])
    oh, ow = sample.ori_shape[:2]
    if (h, w) != (oh, ow):
        image = cv2.resize(image, (ow, oh), interpolation=cv2.INTER_LINEAR)
    return image.astype(np.uint8)


def run_protocol(name, config, checkpoint, user, seed, args, pictures):
    """Test one checkpoint under the protocol; returns the metric's dict."""
    cfg = protocol_config(config, user, seed, args)
    model = init_model(cfg, checkpoint)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator([InteractiveProtocolMetric(nsd_tolerance=args.nsd_tolerance)])
    seen, drawn = 0, 0
    for batch in loader:
        with torch.no_grad():
            outputs = model.test_step(batch)
        for image, sample in zip(batch['inputs'], outputs):
            if drawn < pictures:
                picture = render_interactive_steps(
                    picture_of(image, sample), sample.interactive_steps.data.numpy(),
                    sample.interactive_clicks, box=sample.metainfo.get('prompt_box'),
                    target=sample.interactive_target.data[0].numpy() != 0,
                    agreement=sample.interactive_agreement.data.numpy(),
                    min_panel_size=args.picture_size)
                path = osp.join(args.out_dir, f'steps_{name}_{user}_{drawn}.png')
                cv2.imwrite(path, picture[..., ::-1])
                drawn += 1
        evaluator.process(outputs, batch)
        seen += len(outputs)
        if args.max_images is not None and seen >= args.max_images:
            break
    return evaluator.evaluate(seen)


def mean_std(runs):
    """{seed: metrics} -> (mean, sample std) per metric."""
    keys = list(next(iter(runs.values())))
    values = {k: np.array([runs[s][k] for s in runs], np.float64) for k in keys}
    mean = {k: float(v.mean()) for k, v in values.items()}
    std = {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()}
    return mean, std


def plot(summary, num_clicks, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 3.8))
    steps = np.arange(num_clicks + 1)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    names = sorted({key.split('|')[0] for key in summary}, key=list(
        k.split('|')[0] for k in summary).index)
    for ax, metric in zip(axes, ('DSC', 'NSD')):
        for key, entry in summary.items():
            name, user = key.split('|')
            colour = colours[names.index(name) % len(colours)]
            mean = np.array([entry['mean'][f'{metric}_step{s}'] for s in steps])
            std = np.array([entry['std'][f'{metric}_step{s}'] for s in steps])
            ax.plot(steps, mean, USER_STYLES[user], color=colour, marker='o', markersize=3,
                    label=f'{name}, {user} user')
            ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.15)
        ax.set_xlabel('clicks (0: box only)')
        ax.set_ylabel(metric)
        ax.set_xticks(steps)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def table(summary, num_clicks):
    cols = [f'DSC {s}' for s in range(num_clicks + 1)] + ['DSC_AUC', 'NSD_AUC', 'DSC final',
                                                          'NSD final', 'suggested clicks',
                                                          'clicks on an error']
    lines = ['| method | user | ' + ' | '.join(cols) + ' |', '|' + '---|' * (len(cols) + 2)]
    for key, entry in summary.items():
        name, user = key.split('|')
        mean, std = entry['mean'], entry['std']
        cells = [f'{mean[f"DSC_step{s}"]:.3f}' for s in range(num_clicks + 1)]
        cells += [f'{mean[k]:.3f} ± {std[k]:.3f}' for k in
                  ('DSC_AUC', 'NSD_AUC', 'DSC_final', 'NSD_final')]
        cells.append(f'{mean["clicks_suggestion"]:.2f} / {num_clicks}')
        cells.append(f'{mean["clicks_on_error"]:.2f}' if 'clicks_on_error' in mean else 'n/a')
        lines.append(f'| {name} | {user} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    runs = check_runs(args.run, args.seeds)
    os.makedirs(args.out_dir, exist_ok=True)
    if not runs and not args.merge:
        raise SystemExit('give --run NAME CONFIG CHECKPOINT... and/or --merge JSON...')
    summary = {}
    for path in args.merge:
        with open(path) as f:
            merged = json.load(f)
        if merged['num_clicks'] != args.num_clicks:
            raise SystemExit(f'--merge {path}: {merged["num_clicks"]} clicks, not '
                             f'--num-clicks {args.num_clicks}')
        summary.update(merged['runs'])
    for name, config, checkpoints in runs:
        for user in args.users:
            per_seed = {}
            for i, seed in enumerate(args.seeds):
                checkpoint = checkpoints[i] if len(checkpoints) > 1 else checkpoints[0]
                print(f'[interactive_curves] {name} / {user} user / seed {seed}: {checkpoint}',
                      flush=True)
                per_seed[seed] = run_protocol(name, config, checkpoint, user, seed, args,
                                              args.pictures if i == 0 else 0)
            mean, std = mean_std(per_seed)
            summary[f'{name}|{user}'] = dict(config=config, checkpoints=checkpoints,
                                             seeds=per_seed, mean=mean, std=std)
    with open(osp.join(args.out_dir, 'interactive_curves.json'), 'w') as f:
        json.dump(dict(num_clicks=args.num_clicks, nsd_tolerance=args.nsd_tolerance,
                       seeds=args.seeds, runs=summary), f, indent=1)
    plot(summary, args.num_clicks, osp.join(args.out_dir, 'interactive_curves.png'))
    print(table(summary, args.num_clicks))
    return summary


if __name__ == '__main__':
    main()

"""Test (and evaluate) a checkpoint with a config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show-dir DIR] [--tta]
                         [--amp [--amp-dtype bfloat16|float16]]
    bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [same options]

Metrics are logged and dumped to the work dir (``--work-dir``, else the config's ``work_dir``,
else ``./work_dirs/<config name>``).
"""
import argparse
import contextlib
import inspect
import os
import os.path as osp

from mmengine.config import ConfigDict, DictAction

from mmsam.engine import (ConfigError, CorruptCheckpointError, PrerequisiteError,
                          build_runner,
                          check_prerequisites, checkpoint_must_fit,
                          config_argument_errors, destroy_process_group, load_config)
from mmsam.engine.amp import AMP_DTYPE_HELP, autocast_for, model_device_type
from mmsam.registry import METRICS
from mmsam.utils import register_all_modules


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='the directory to save output predictions for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (the visualizer\'s save_dir); '
        'how often is set by default_hooks.visualization.interval')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--print-config',
        action='store_true',
        help='also print the complete config on the console (it always goes to '
        '<work_dir>/<config name>.py and the log file)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--amp', action='store_true',
                        help='run inference under autocast (CPU or GPU; see --amp-dtype)')
    parser.add_argument('--amp-dtype', choices=['bfloat16', 'float16'], default=None,
                        help=AMP_DTYPE_HELP)
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.amp_dtype is not None and not args.amp:
        parser.error('--amp-dtype needs --amp')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return parser, args


def trigger_visualization_hook(cfg, args):
    """Turns on the config's visualization hook for --show / --show-dir (as mmseg does)."""
    default_hooks = cfg.get('default_hooks', {})
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            f'--show/--show-dir need a visualization hook, but {args.config} has no '
            "default_hooks.visualization; add e.g. "
            "default_hooks=dict(visualization=dict(type='SegVisualizationHook')).")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        if cfg.get('visualizer') is None:
            raise RuntimeError(f'--show-dir needs a `visualizer` in {args.config}.')
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def enable_tta(cfg, args):
    """Replaces the test pipeline and model by the config's ``tta_pipeline``/``tta_model``."""
    missing = [key for key in ('tta_pipeline', 'tta_model') if cfg.get(key) is None]
    if missing:
        raise RuntimeError(f'--tta needs {" and ".join(missing)} in {args.config}.')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    return cfg


def set_output_dir(cfg, out_dir):
    """Makes every test metric that can save predictions (``output_dir``) save them to --out."""
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, (dict, ConfigDict)) and 'metrics' in evaluators:
        evaluators = evaluators['metrics']
    if isinstance(evaluators, (dict, ConfigDict)):
        evaluators = [evaluators]
    accepting = []
    for metric_cfg in evaluators:
        metric_type = metric_cfg.get('type')
        metric_cls = METRICS.get(metric_type) if isinstance(metric_type, str) else metric_type
        parameters = inspect.signature(metric_cls).parameters if metric_cls else {}
        if 'output_dir' in parameters:
            metric_cfg['output_dir'] = out_dir
            accepting.append(metric_cfg)
    if not accepting:
        raise RuntimeError(
            f'--out {out_dir}: none of the test metrics '
            f'({", ".join(str(m.get("type")) for m in evaluators)}) can save predictions '
            '(no `output_dir` argument).')
    return cfg


def main(argv=None):
    parser, args = parse_args(argv)
    register_all_modules(init_default_scope=True)

    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        parser.error(str(err))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    # Loaded strictly below, before the hooks run; resuming would need a train loop.
    cfg.load_from, cfg.resume = None, False
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg = enable_tta(cfg, args)
    if args.out is not None:
        cfg = set_output_dir(cfg, args.out)

    if args.print_config:
        print(f'Config:\n{cfg.pretty_text}')

    try:
        with config_argument_errors(cfg):
            # Before the Runner, which creates the work dir: a run that cannot start creates
            # nothing, and every missing file (checkpoint, data) is named at once.
            check_prerequisites(cfg, 'test', checkpoints=[('checkpoint', args.checkpoint)])
            runner = build_runner(cfg)
            try:
                with checkpoint_must_fit(args.checkpoint, args.config):
                    runner.load_checkpoint(args.checkpoint, strict=True)
            except BaseException:
                if hasattr(runner, 'discard_if_unstarted'):  # a config's own runner_type may not
                    runner.discard_if_unstarted()
                raise
            amp = autocast_for(model_device_type(runner.model), args.amp_dtype) \
                if args.amp else contextlib.nullcontext()
            with amp:
                runner.test()
    except PrerequisiteError as err:  # names the config and every missing file
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    except ConfigError as err:  # an argument the config gets wrong
        parser.exit(2, f'{parser.prog}: error: {err} (config {args.config})\n')
    except CorruptCheckpointError as err:  # names the file and the newest intact one
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    destroy_process_group()


if __name__ == '__main__':
    main()

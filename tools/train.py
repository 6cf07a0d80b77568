"""Train a segmentor from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp [--amp-dtype D]]
                          [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NPROC [same options]       # distributed, GPU or CPU (gloo)

Checkpoints and logs go to ``--work-dir``, else the config's ``work_dir``, else
``./work_dirs/<config name>``.
"""
import argparse
import logging
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.logging import print_log

from mmsam.engine import (ConfigError, CorruptCheckpointError, PrerequisiteError,
                          build_runner, check_prerequisites, config_argument_errors,
                          destroy_process_group, find_resume_checkpoint, load_config)
from mmsam.engine.amp import AMP_DTYPE_HELP
from mmsam.utils import register_all_modules


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: without a value from the latest checkpoint in the work dir '
        '(starts from scratch if there is none), or from the given checkpoint')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (CPU or GPU; see --amp-dtype)')
    parser.add_argument(
        '--amp-dtype',
        choices=['bfloat16', 'float16'],
        default=None,
        help=AMP_DTYPE_HELP)
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
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank; torchrun
    # sets the LOCAL_RANK environment variable instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return parser, args


def set_work_dir(cfg, config_path, work_dir=None):
    """Work dir priority: command line > config's ``work_dir`` > ./work_dirs/<config stem>."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def enable_amp(cfg, parser, dtype=None):
    """Switches the optimizer wrapper to mmsam's AmpOptimWrapper (CPU and GPU).

    ``dtype`` (``--amp-dtype``): None keeps the config's, else bf16 on CPU / fp16 on CUDA.
    """
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper == 'AmpOptimWrapper':
        print_log('AMP training is already enabled in your config.', logger='current',
                  level=logging.WARNING)
    elif optim_wrapper != 'OptimWrapper':
        parser.error('--amp is only supported when the optimizer wrapper type is '
                     f'`OptimWrapper`, but the config has `{optim_wrapper}`.')
    else:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if dtype is not None:
        cfg.optim_wrapper.dtype = dtype


def set_resume(cfg, resume, parser):
    """Sets ``cfg.resume``/``cfg.load_from`` from ``--resume`` (None, 'auto' or a path)."""
    if resume is None:
        cfg.setdefault('resume', False)
        return
    if resume == 'auto':
        # The newest intact checkpoint: a damaged latest one is skipped with a warning.
        latest = find_resume_checkpoint(cfg.work_dir)
        if latest is None:
            # Keep cfg.load_from (e.g. pretrained weights): resuming from it would also restore
            # an optimizer state and iteration it does not have.
            print_log(f'--resume: no checkpoint in {cfg.work_dir}, training from the start.',
                      logger='current', level=logging.WARNING)
            cfg.resume = False
            return
        resume = latest
    elif '://' not in resume and not osp.isfile(resume):
        parser.error(f'--resume {resume}: no such checkpoint file.')
    cfg.resume = True
    cfg.load_from = resume


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
    set_work_dir(cfg, args.config, args.work_dir)

    if args.amp:
        enable_amp(cfg, parser, args.amp_dtype)
    elif args.amp_dtype is not None:
        parser.error('--amp-dtype needs --amp')
    set_resume(cfg, args.resume, parser)
    if args.print_config:
        print(f'Config:\n{cfg.pretty_text}')

    try:
        with config_argument_errors(cfg):
            # Before the Runner, which creates the work dir: a run that cannot start creates
            # nothing, and every missing file is named at once.
            check_prerequisites(cfg, 'train')
            runner = build_runner(cfg)
            runner.train()
    except PrerequisiteError as err:  # names the config and every missing file
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    except ConfigError as err:  # an argument the config gets wrong
        parser.exit(2, f'{parser.prog}: error: {err} (config {args.config})\n')
    except CorruptCheckpointError as err:  # names the file and the newest intact one
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    destroy_process_group()


if __name__ == '__main__':
    main()

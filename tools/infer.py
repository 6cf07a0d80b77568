"""Run a trained model on files: label volumes in the scan's geometry (scans), label maps and
labelled pictures (images, mmsam .npz), or hypothesis grids (multi-hypothesis models).

    python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT ...] --out-dir DIR
        [--intensity auto|window|percentile|minmax|unit|raw] [--window LOW HIGH]   # scans
        [--box X0 Y0 X1 Y1 [--slices A:B] | --prompts FILE.json]                  # box heads
        [--box X0 Y0 X1 Y1 --slices K]                          # SAM 2 (MedSAM2): key slice
        [--points X Y Z LABEL ...] [--previous-mask NAME_logits.npz] [--save-logits]  # clicks
        [--embedding-cache DIR] [--propagate]
        [--pictures 2 | --picture-slices K ...] [--max-voxels N] [--batch-size 8]
        [--data-meta META.json] [--num-hypotheses M] [--device cpu] [--amp]
        [--cfg-options k=v ...]

Inputs: scans (NIfTI, MetaImage, a folder of them, or a folder holding one DICOM series; read by
:func:`mmsam.apis.inference_scan`, prompts checked and run by :mod:`mmsam.apis.scan_jobs`,
written by :mod:`mmsam.apis.scan_outputs` in the scan's geometry), PNG/JPEG images and mmsam 2D
slice / volume / multi-annotator ``.npz`` files (read and written by
:mod:`mmsam.apis.file_inference`). Slices are fitted into the model's input by the config's test
pipeline and data preprocessor exactly as ``tools/test.py`` does; 3D models run their sliding
window. Box-prompted models take ``--box`` / ``--prompts`` (schema in
:mod:`mmsam.apis.prompts`); clicks (``--points``, the file's ``points``) and a previous run's
logits refine the answer, and ``--embedding-cache DIR`` keeps the encoder's features so the next
call on the same scan does not run the encoder (docs/interactive.md). What each input gives:
docs/outputs.md#inference and docs/deployment.md. Every input is checked before the model is
built (errors name the file); outputs are staged and moved into ``DIR`` once complete, and their
paths printed. The same tool runs exported ONNX models: ``tools/deployment/onnx_infer.py``.
"""
import argparse
import contextlib
import os.path as osp
import sys

import torch
from mmengine.config import DictAction

from mmsam.apis import init_model
from mmsam.apis.file_inference import (check_input_paths, class_names_and_palette,
                                       describe_input, draw_hypotheses, hypothesis_inputs,
                                       hypothesis_visualizer, prepare_npz,
                                       read_ct_statistics, segment_file, unique_names)
from mmsam.apis.inference import config_test_pipeline, model_kind
from mmsam.apis.inference_embedding_cache import attach_embedding_cache
from mmsam.apis.prompts import PromptError, has_clicks
from mmsam.apis.sam2_volume_inference import is_sam2_volume_config, key_slice_prompt
from mmsam.apis.scan_jobs import plan_scan_jobs, run_sam2_scan_job, run_scan_job, scan_prompts
from mmsam.apis.scan_outputs import scan_name
from mmsam.datasets.io.scan import MedicalImageError, expand_scan_folders, scan_kind
from mmsam.engine import ConfigArgumentError, ConfigError, load_config
from mmsam.engine.amp import AMP_DTYPE_HELP, autocast_for
from mmsam.engine.checkpoint import OfficialFormatError, check_official_format
from mmsam.utils import register_all_modules

# Re-exported for tests and scripts that load this tool as a module.
__all__ = ['main', 'parse_args', 'config_test_pipeline', 'prepare_npz']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Segment images, slices and volumes with a trained model (label maps and '
        'labelled pictures), or draw a multi-hypothesis model\'s masks')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint written by tools/train.py')
    parser.add_argument('images', nargs='+', metavar='INPUT',
                        help='scans (NIfTI .nii/.nii.gz, MetaImage .mha/.mhd, a DICOM series '
                        'folder), image files, mmsam slice/volume .npz files, or '
                        '(multi-hypothesis models) multi-annotator .npz samples')
    parser.add_argument('--out-dir', required=True, help='where the outputs are written')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='slices per forward pass (2D models on volumes)')
    parser.add_argument('--pictures', type=int, default=2,
                        help='pictures per volume: the slices with the most classes')
    parser.add_argument('--picture-slices', type=int, nargs='+', metavar='K',
                        help='scans: draw these slices instead')
    parser.add_argument('--data-meta', metavar='META.json',
                        help='meta.json of the training data (3D models: the CT statistics '
                        'NormalizeIntensity3D uses; default: the config\'s test data root\'s)')
    parser.add_argument('--box', type=float, nargs=4, metavar=('X0', 'Y0', 'X1', 'Y1'),
                        help='box prompt in pixels of the image or slice (box-prompted '
                        'multi-hypothesis models; required for images and scans)')
    parser.add_argument('--slices', metavar='A:B',
                        help='scans: the slices A <= k < B that --box prompts (default all)')
    parser.add_argument('--prompts', metavar='FILE.json',
                        help='scans: per-slice box prompts (schema in mmsam/apis/prompts.py)')
    parser.add_argument('--points', type=float, nargs='+', metavar='X Y Z LABEL',
                        help='scans: clicks, groups of 4 numbers: x y (pixels of the slice), z '
                        '(slice index) and label (1 foreground, 0 background); with --box or '
                        'alone, added to --prompts\' clicks')
    parser.add_argument('--previous-mask', metavar='NAME_logits.npz',
                        help='scans: the logits a previous --save-logits run wrote for the same '
                        'scan, fed back as the mask prompt of the slices it covers')
    parser.add_argument('--save-logits', action='store_true',
                        help='scans: also write NAME_logits.npz (the next call\'s '
                        '--previous-mask); on whenever clicks or a previous mask are given')
    parser.add_argument('--propagate', action='store_true',
                        help='scans: each box slice is a key slice whose mask propagates to '
                        'the neighbouring slices (MedSAM\'s 3D rule), then the clicks refine '
                        'and re-propagate, in order (mmsam.apis.VolumeInteractiveSession)')
    parser.add_argument('--embedding-cache', metavar='DIR',
                        help='keep the image encoder\'s features in DIR (keyed by the input '
                        'pixels, the config and the weights): a later call on the same input '
                        'does not run the encoder')
    parser.add_argument('--intensity', default='auto',
                        choices=('auto', 'window', 'percentile', 'minmax', 'unit', 'raw'),
                        help='scans: how stored values (HU, MR) map to the model\'s input; auto: '
                        'as the training data were converted (meta.json, dataset type)')
    parser.add_argument('--window', type=float, nargs=2, metavar=('LOW', 'HIGH'),
                        help='scans: the CT window of --intensity window (default: the '
                        'training data\'s, else Synapse\'s -125 275 HU)')
    parser.add_argument('--max-voxels', type=int,
                        help='refuse scans larger than this (default $MMSAM_MAX_VOXELS or 2**30)')
    parser.add_argument('--num-hypotheses', type=int,
                        help='M, hypotheses per image (model.test_cfg.num_hypotheses)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    parser.add_argument('--amp', action='store_true',
                        help='run the model under autocast (see --amp-dtype)')
    parser.add_argument('--amp-dtype', choices=['bfloat16', 'float16'], default=None,
                        help=AMP_DTYPE_HELP)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of the config, key=value')
    args = parser.parse_args(argv)
    check_args(parser, args)
    return parser, args


def check_args(parser, args):
    """Fails early (before any model is built) on missing files and bad option values; a
    folder of NIfTI / MetaImage files stands for its files."""
    args.images = expand_scan_folders(args.images)
    try:  # an official file or HuggingFace folder: name the converter to run
        check_official_format(args.checkpoint)
    except OfficialFormatError as err:
        parser.error(str(err))
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint),
                       ('--data-meta', args.data_meta)):
        if path is not None and not osp.isfile(path):
            parser.error(f'{what} {path}: no such file')
    try:
        check_input_paths(args.images)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    if args.box is not None:
        x0, y0, x1, y1 = args.box
        if min(args.box) < 0 or x1 < x0 or y1 < y0:
            parser.error(f'--box {x0:g} {y0:g} {x1:g} {y1:g}: need 0 <= x0 <= x1 and '
                         '0 <= y0 <= y1 (pixels of the image)')
    for flag, value, least in (('--num-hypotheses', args.num_hypotheses, 1),
                               ('--batch-size', args.batch_size, 1),
                               ('--pictures', args.pictures, 0),
                               ('--max-voxels', args.max_voxels, 1)):
        if value is not None and value < least:
            parser.error(f'{flag} must be >= {least}, got {value}')
    if args.prompts is not None and (args.box is not None or args.slices is not None):
        parser.error('give the box prompts either with --box [--slices a:b] or with --prompts '
                     'FILE.json, not both')
    if args.prompts is not None and not osp.isfile(args.prompts):
        parser.error(f'--prompts {args.prompts}: no such file')
    if args.prompts is not None and args.previous_mask is not None:
        parser.error('give the previous mask either with --previous-mask or as the prompts '
                     'file\'s "previous_mask", not both')
    if args.propagate and args.previous_mask is not None:
        parser.error('--propagate replays the boxes and clicks in order (the session\'s own '
                     'logits are fed back): it takes no --previous-mask')
    if args.previous_mask is not None and not osp.isfile(args.previous_mask):
        parser.error(f'--previous-mask {args.previous_mask}: no such file')
    if args.embedding_cache is not None and osp.exists(args.embedding_cache) and \
            not osp.isdir(args.embedding_cache):
        parser.error(f'--embedding-cache {args.embedding_cache}: not a folder')


def load_torch_model(parser, args, cfg):
    """The trained PyTorch model of ``cfg`` and ``args.checkpoint``."""
    try:
        return init_model(cfg, args.checkpoint, device=args.device)
    except ConfigArgumentError as err:
        parser.error(f'{err} (config {args.config})')


def main(argv=None, load_model=load_torch_model, parse=None):
    """Run the tool; ``load_model(parser, args, cfg)`` builds the model (PyTorch here, the
    ONNX runner in tools/deployment/onnx_infer.py). Returns the paths written."""
    parser, args = (parse or parse_args)(argv)
    register_all_modules(init_default_scope=True)
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        parser.error(str(err))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    kind = model_kind(cfg)
    if is_sam2_volume_config(cfg):  # a box on one key slice, propagated by SAM 2's memory
        return infer_sam2_scans(parser, args, cfg, load_model)
    scans = [p for p in args.images if scan_kind(p) is not None]
    others = [p for p in args.images if scan_kind(p) is None]
    if (args.slices is not None or args.prompts is not None) and others:
        parser.error(f'--slices / --prompts are for scans; {others[0]} is not one (use --box)')
    scan_options = [name for name, value in (
        ('--previous-mask', args.previous_mask), ('--save-logits', args.save_logits),
        ('--propagate', args.propagate)) if value]
    if scan_options and others:
        parser.error(f'{" / ".join(scan_options)} are for scans (NIfTI, MetaImage, DICOM); '
                     f'{others[0]} is not one: for 2D images keep the logits in an '
                     'mmsam.apis.InteractiveSession')
    if args.points and others and kind != 'hypotheses':
        parser.error(f'--points are for box-prompted models; {args.config} builds a '
                     f'{cfg.model.get("type")}')
    plan = plan_scans(parser, args, cfg, kind, scans) if scans else []
    written = []
    amp = autocast_for(torch.device(args.device).type, args.amp_dtype) \
        if getattr(args, 'amp', False) else contextlib.nullcontext()
    with amp:
        if others:
            args.images = others
            if kind == 'hypotheses':
                written += infer_hypotheses(parser, args, cfg, load_model)
            else:
                written += infer_semantic(parser, args, cfg, kind == 'volume', load_model)
        if plan:
            written += infer_scans(parser, args, cfg, plan, load_model)
    return written


# Scans (NIfTI, DICOM, MetaImage) -----------------------------------------------------------
def plan_scans(parser, args, cfg, kind, scans):
    """Every scan's header and prompts checked before the model is built: [ScanJob]."""
    try:
        prompts = scan_prompts(args.prompts, args.box, args.slices, args.points,
                               args.previous_mask)
    except PromptError as err:
        parser.error(str(err))
    if kind != 'hypotheses' and (args.propagate or args.save_logits):
        parser.error(f'--propagate / --save-logits are for box-prompted models; {args.config} '
                     f'builds a {cfg.model.get("type")}')
    if kind == 'hypotheses' and prompts is None:
        parser.error(f'{args.config} builds a box-prompted model ({cfg.model.decode_head.type}): '
                     'give the box prompts with --box X0 Y0 X1 Y1 [--slices a:b] or --prompts '
                     'FILE.json (pixels of the slices)')
    if kind != 'hypotheses' and prompts is not None:
        parser.error(f'--box / --prompts are for box-prompted models; {args.config} builds a '
                     f'{cfg.model.get("type")}, which needs no prompt')
    try:
        return plan_scan_jobs(
            scans, prompts, max_voxels=args.max_voxels, propagate=args.propagate,
            interactive=has_clicks(prompts) or args.save_logits or args.propagate)
    except (MedicalImageError, PromptError) as err:
        parser.error(str(err))


def infer_scans(parser, args, cfg, plan, load_model):
    """Label NIfTI (and hypotheses, agreement) plus overlays of each scan, in its geometry."""
    intensity_properties = read_data_meta(parser, args)
    model = load_model(parser, args, cfg)
    cache = embedding_cache_for(parser, args, model)
    classes, palette = class_names_and_palette(model, cfg)
    if model_kind(cfg) == 'hypotheses':
        classes, palette = ['background', 'foreground'], None
    how = 'by sliding window' if model_kind(cfg) == 'volume' else 'slice by slice'
    written = []
    for name, job in zip(unique_names([scan_name(j.path) + '.scan' for j in plan]), plan):
        print(f'{job.path}: segmenting {how}', file=sys.stderr)
        try:
            paths = run_scan_job(
                model, job, args.out_dir, name, classes, palette, intensity=args.intensity,
                window=window_of(args), batch_size=args.batch_size,
                max_voxels=args.max_voxels, intensity_properties=intensity_properties,
                embedding_cache=cache, pictures=args.pictures,
                picture_slices=args.picture_slices)
        except (OSError, KeyError, ValueError) as err:
            input_error(parser, job.path, err)
        for p in paths:
            print(p)
        written += paths
    return written


def embedding_cache_for(parser, args, model):
    """The on-disk embedding cache of ``--embedding-cache`` attached to ``model`` (or None)."""
    if args.embedding_cache is None:
        return None
    if model_kind(model.cfg) == 'volume':
        parser.error(f'--embedding-cache is for 2D encoders; {args.config} builds a 3D '
                     f'{model.cfg.model.get("type")}')
    try:
        cache = attach_embedding_cache(model, args.embedding_cache)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    print(f'embedding cache: {cache.cache_dir}', file=sys.stderr)
    return cache


def infer_sam2_scans(parser, args, cfg, load_model):
    """SAM2VolumeSegmentor: each scan segmented from ``--box`` on key slice ``--slices K``."""
    if args.prompts or args.points:
        parser.error('a SAM2VolumeSegmentor takes --box X0 Y0 X1 Y1 --slices K, not --prompts '
                     '/ --points')
    try:
        key_slice = key_slice_prompt(args.images, args.box, args.slices, args.max_voxels)
    except ValueError as err:
        parser.error(str(err))
    intensity_properties = read_data_meta(parser, args)
    model = load_model(parser, args, cfg)
    names = unique_names([scan_name(p) + '.scan' for p in args.images])
    written = []
    for name, path in zip(names, args.images):
        print(f'{path}: propagating the box on slice {key_slice}', file=sys.stderr)
        try:
            written += run_sam2_scan_job(
                model, path, args.out_dir, name, args.box, key_slice, intensity=args.intensity,
                window=window_of(args), max_voxels=args.max_voxels,
                intensity_properties=intensity_properties, pictures=args.pictures,
                picture_slices=args.picture_slices)
        except (OSError, KeyError, ValueError) as err:
            input_error(parser, path, err)
    for p in written:
        print(p)
    return written


def window_of(args):
    """``--window`` as a (low, high) tuple, or None."""
    return None if args.window is None else tuple(args.window)


def input_error(parser, path, err):
    """Stop with ``err``'s message, naming the input ``path`` unless the message does."""
    message = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
    parser.error(message if path in message else f'input {path}: {message}')


def read_data_meta(parser, args):
    """The ``ct_foreground`` statistics of ``--data-meta`` (or None)."""
    if args.data_meta is None:
        return None
    try:
        return read_ct_statistics(args.data_meta)
    except ValueError as err:
        parser.error(f'--data-meta {err}')


def infer_hypotheses(parser, args, cfg, load_model=load_torch_model):
    """The multi-hypothesis path: one grid picture per .npz sample or image (with --box)."""
    if args.num_hypotheses is not None:
        cfg.merge_from_dict({'model.test_cfg.num_hypotheses': args.num_hypotheses})
    try:  # every input is read before the model is built, so a bad file fails at once
        inputs = hypothesis_inputs(cfg, args.images, args.box, args.points)
    except ValueError as err:
        parser.error(str(err))
    model = load_model(parser, args, cfg)
    embedding_cache_for(parser, args, model)
    visualizer = hypothesis_visualizer(cfg)
    written = []
    for name, (packed, image) in zip(unique_names(args.images), inputs):
        try:
            out_file = draw_hypotheses(model, visualizer, name, packed, image,
                                       osp.join(args.out_dir, f'{name}.png'))
        except ValueError as err:
            parser.error(f'{args.config}: {err}')
        written.append(out_file)
        print(out_file)
    return written


def infer_semantic(parser, args, cfg, volume_model, load_model=load_torch_model):
    """Label maps and labelled pictures of a semantic (2D or 3D) model's predictions."""
    if args.box is not None or args.num_hypotheses is not None:
        option = '--box' if args.box is not None else '--num-hypotheses'
        parser.error(f'{option} is for multi-hypothesis models; {args.config} builds a '
                     f'{cfg.model.get("type")}, which needs no prompt')
    intensity_properties = read_data_meta(parser, args)

    # Every input is checked before the model is built, so a bad file fails at once.
    kinds = []
    for path in args.images:
        try:
            kinds.append(describe_input(path, volume_model))
        except (OSError, KeyError, ValueError) as err:
            parser.error(f'input {path}: {err}')
    model = load_model(parser, args, cfg)
    if not volume_model:
        embedding_cache_for(parser, args, model)
    classes, palette = class_names_and_palette(model, cfg)

    written = []
    for name, (kind, _), path in zip(unique_names(args.images), kinds, args.images):
        if kind == 'volume':
            how = 'by sliding window' if volume_model else 'slice by slice'
            print(f'{path}: segmenting {how}', file=sys.stderr)
        try:
            paths = segment_file(model, path, kind, name, args.out_dir, classes, palette,
                                 batch_size=args.batch_size, pictures=args.pictures,
                                 intensity_properties=intensity_properties)
        except (OSError, KeyError, ValueError) as err:
            input_error(parser, path, err)
        for p in paths:
            print(p)
        written += paths
    return written


if __name__ == '__main__':
    main()

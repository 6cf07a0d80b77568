"""Export a trained 2D model (SAMed, H-SAM, MedSAM, SAM-MCL, SeqSAM) to ONNX.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out DIR [--batch 2]
        [--verify IMAGE_OR_SCAN ...] [--cfg-options k=v ...]

Writes ``DIR/encoder.onnx`` (LoRA merged into the qkv weights), ``DIR/head.onnx`` (box-prompted
heads take ``boxes`` (B, 4) too), ``DIR/deploy.json`` and ``DIR/config.py``; both graphs have a
dynamic batch axis (see :mod:`mmsam.apis.onnx_export`). Run them with
``tools/deployment/onnx_infer.py DIR INPUT ... --out-dir OUT``. Prints the max abs difference
of the logits between PyTorch and onnxruntime on a random batch.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction

from mmsam.apis import init_model
from mmsam.apis.onnx_export import export_onnx
from mmsam.engine import ConfigArgumentError, ConfigError, load_config
from mmsam.utils import register_all_modules


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a trained mmsam 2D model to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint written by tools/train.py')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--batch', type=int, default=2, help='example batch traced')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides of the config, key=value')
    args = parser.parse_args(argv)
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            parser.error(f'{what} {path}: no such file')
    if args.batch < 1:
        parser.error(f'--batch must be >= 1, got {args.batch}')
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    register_all_modules(init_default_scope=True)
    try:
        cfg = load_config(args.config)
    except ConfigError as err:
        parser.error(str(err))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        model = init_model(cfg, args.checkpoint)
    except ConfigArgumentError as err:
        parser.error(f'{err} (config {args.config})')
    torch.manual_seed(0)
    try:
        record = export_onnx(model, args.out, batch=args.batch)
    except ValueError as err:
        parser.error(f'{args.config}: {err}')
    for note in record['notes']:
        print(f'note: {note}')
    print(osp.join(args.out, 'encoder.onnx'))
    print(osp.join(args.out, 'head.onnx'))
    return record


if __name__ == '__main__':
    main()

"""Convert the Synapse multi-organ CT data (MICCAI 2015 BTCV) into mmsam's slice/volume format.

    python tools/dataset_converters/synapse.py SRC DST [--format auto|transunet|btcv]
        [--few-shot-fraction 0.1] [--seed 0] [--few-shot-list FILE] [--few-shot-name NAME]
        [--train-volumes] [--intensity window|hu] [--target-spacing none|auto|Z,Y,X]
        [--overwrite]

One command for the three jobs: TransUNet's preprocessed release (``--format transunet``,
:mod:`mmsam.datasets.converters.synapse_transunet`), the raw BTCV release (``--format btcv``,
:mod:`mmsam.datasets.converters.synapse_btcv`) and volumes for 3D methods (``--train-volumes``,
``--intensity hu``, ``--target-spacing``, :mod:`mmsam.datasets.converters.synapse_volumes`).
:mod:`mmsam.datasets.converters.synapse` describes the output and the few-shot split.
"""
import argparse
import sys

from mmsam.datasets.converters.command_line import run_conversion
from mmsam.datasets.converters.synapse import INTENSITY_MODES, SOURCES, convert_synapse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert Synapse multi-organ CT (TransUNet release or raw BTCV) into '
                    'mmsam\'s slice/volume format.')
    parser.add_argument('src', help='source folder')
    parser.add_argument('dst', help='output data root (e.g. data/synapse)')
    parser.add_argument('--format', default='auto', choices=['auto', *SOURCES],
                        help='source layout (default: detected)')
    parser.add_argument('--few-shot-fraction', type=float, default=None,
                        help='draw this share of training slices as the few-shot split '
                             '(0: none); default: the published H-SAM list')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the few-shot draw (giving it asks for a draw; 0 by '
                             'default)')
    parser.add_argument('--few-shot-list', default=None,
                        help='file of slice names to use as the few-shot split; default: H-SAM\'s '
                             'published 221-slice list (lists_Synapse/train_220.txt, shipped in '
                             'mmsam/datasets/splits/hsam/) unless --few-shot-fraction '
                             'or --seed asks for a seeded draw')
    parser.add_argument('--few-shot-name', default=None,
                        help='few-shot split name (default: from the fraction, train_10pct)')
    parser.add_argument('--train-volumes', action='store_true',
                        help='also write the training cases as volumes to train_volumes/ (3D)')
    parser.add_argument('--intensity', default='window', choices=INTENSITY_MODES,
                        help='window: TransUNet [-125, 275] HU -> [0, 1] (default); hu: raw HU '
                             'and CT foreground statistics in meta.json (btcv only)')
    parser.add_argument('--target-spacing', default='none',
                        help='none (default), auto (nnU-Net\'s rule) or Z,Y,X mm: resample '
                             'every case (btcv only)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    few_shot_list = args.few_shot_list
    if few_shot_list is None and args.few_shot_fraction is None and args.seed is None:
        few_shot_list = 'hsam'  # the published split, see parse_args
    fraction = 0.1 if args.few_shot_fraction is None else args.few_shot_fraction
    return run_conversion(lambda: convert_synapse(
        args.src, args.dst, fmt=args.format, few_shot_fraction=fraction,
        seed=args.seed or 0, few_shot_list=few_shot_list, few_shot_name=args.few_shot_name,
        overwrite=args.overwrite, log=print, train_volumes=args.train_volumes,
        intensity=args.intensity, target_spacing=args.target_spacing))


if __name__ == '__main__':
    sys.exit(main())

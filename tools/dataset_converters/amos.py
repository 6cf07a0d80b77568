"""Convert the AMOS22 abdominal CT data into mmsam's volume format with nnU-Net's 5 folds.

    python tools/dataset_converters/amos.py SRC DST [--include-validation]
        [--target-spacing none|auto|Z,Y,X] [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.amos`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.amos import convert_amos
from mmsam.datasets.converters.command_line import run_conversion


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert AMOS22 CT into mmsam\'s volume format with nnU-Net\'s 5 folds.')
    parser.add_argument('src', help='the AMOS22 release (imagesTr/, labelsTr/, ...)')
    parser.add_argument('dst', help='output data root (e.g. data/amos)')
    parser.add_argument('--include-validation', action='store_true',
                        help='add the CT cases of imagesVa/labelsVa to the cross-validation pool')
    parser.add_argument('--target-spacing', default='none',
                        help='none (default), auto (nnU-Net\'s rule) or Z,Y,X mm')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    return run_conversion(lambda: convert_amos(
        args.src, args.dst, include_validation=args.include_validation,
        target_spacing=args.target_spacing, overwrite=args.overwrite, log=print))


if __name__ == '__main__':
    sys.exit(main())

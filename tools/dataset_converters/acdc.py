"""Convert the ACDC cardiac cine-MRI data into mmsam's volume format (3D methods).

    python tools/dataset_converters/acdc.py SRC DST [--target-spacing none|auto|Z,Y,X]
        [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.acdc`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.acdc import convert_acdc
from mmsam.datasets.converters.command_line import run_conversion


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert ACDC cardiac cine-MRI into mmsam\'s volume format.')
    parser.add_argument('src', help='the ACDC release (holding training/) or its training/')
    parser.add_argument('dst', help='output data root (e.g. data/acdc)')
    parser.add_argument('--target-spacing', default='none',
                        help='none (default), auto (nnU-Net\'s rule) or Z,Y,X mm')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    return run_conversion(lambda: convert_acdc(args.src, args.dst, args.target_spacing,
                                               overwrite=args.overwrite, log=print))


if __name__ == '__main__':
    sys.exit(main())

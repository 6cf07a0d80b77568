"""Convert the PROMISE12 prostate MRI training data into mmsam's slice/volume format.

    python tools/dataset_converters/promise12.py SRC DST [--labelled N | --labelled-list FILE]
        [--test-list FILE] [--all-train] [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.promise12`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.command_line import run_conversion
from mmsam.datasets.converters.promise12 import convert_promise12
from mmsam.datasets.splits import HSAM_PROMISE12_TEST


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert PROMISE12 prostate MRI (CaseNN.mhd) into mmsam\'s slice/volume '
                    'format.')
    parser.add_argument('src', help='folder with CaseNN.mhd and CaseNN_segmentation.mhd')
    parser.add_argument('dst', help='output data root (e.g. data/promise12)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--labelled', type=int, default=None,
                       help='use the first N training cases as labelled')
    group.add_argument('--labelled-list', default=None,
                       help='file of labelled case names (one a line, training cases)')
    parser.add_argument('--test-list', default=None,
                        help='file of test case names; default: H-SAM\'s published test set '
                             '(lists_PROMISE_3/test_vol.txt: Case16, 35, 34, 49, 23, 12, 28, 43, '
                             '20, 13); "last10" for Case40-Case49')
    parser.add_argument('--train-slices', default=None,
                        help='file of the training slices (<case>_sliceNNN) for splits/train.txt, '
                             'or "all" for every slice of the labelled cases; default: H-SAM\'s '
                             'published list (foreground slices of Case29, Case14, Case05, '
                             'lists_PROMISE_3/train.txt) unless --labelled/--labelled-list is '
                             'given')
    parser.add_argument('--all-train', action='store_true',
                        help='also write the slices of all training cases (splits/train_all.txt)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    train_slices = args.train_slices
    if train_slices is None and args.labelled is None and args.labelled_list is None:
        train_slices = 'hsam'  # HSAM_PROMISE12_3, or a draw when the source lacks its cases
    test_list = HSAM_PROMISE12_TEST if args.test_list is None else args.test_list
    return run_conversion(lambda: convert_promise12(
        args.src, args.dst, labelled=args.labelled, labelled_list=args.labelled_list,
        test_list=None if test_list == 'last10' else test_list, all_train=args.all_train,
        overwrite=args.overwrite, log=print,
        train_slices=None if train_slices == 'all' else train_slices))


if __name__ == '__main__':
    sys.exit(main())

"""Convert the UA-MT-preprocessed left atrium (LA) MRI release into mmsam's slice/volume format.

    python tools/dataset_converters/la.py SRC DST [--labelled N | --labelled-list FILE]
        [--all-train] [--spacing Z Y X] [--overwrite]

The conversion itself is :mod:`mmsam.datasets.converters.la`, whose docstring
describes the source, the output and the choices made.
"""
import argparse
import sys

from mmsam.datasets.converters.command_line import run_conversion
from mmsam.datasets.converters.la import convert_la


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert UA-MT\'s preprocessed left atrium MRI release into mmsam\'s '
                    'slice/volume format.')
    parser.add_argument('src', help='release folder (train.list, test.list, '
                                    '"2018LA_Seg_Training Set/")')
    parser.add_argument('dst', help='output data root (e.g. data/la)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--labelled', type=int, default=None,
                       help='use the first N cases of train.list as labelled (4 is the 5%% '
                            'split of UA-MT/BCP)')
    group.add_argument('--labelled-list', default=None,
                       help='file of labelled case ids (one a line, from train.list)')
    parser.add_argument('--train-slices', default=None,
                        help='file of the training slices (<case>_sliceNNN) for splits/train.txt, '
                             'or "all" for every slice of the labelled cases; default: H-SAM\'s '
                             'published list (the 4 labelled scans\' foreground slices, '
                             'lists_LA_4/train.txt) unless --labelled/--labelled-list is given')
    parser.add_argument('--all-train', action='store_true',
                        help='also write the slices of all training cases (splits/train_all.txt)')
    parser.add_argument('--spacing', type=float, nargs=3, metavar=('Z', 'Y', 'X'), default=None,
                        help='voxel size of the test volumes in mm (default: 1 1 1, HD95 in '
                             'voxels; the challenge grid is 0.625 mm isotropic)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    train_slices = args.train_slices
    if train_slices is None and args.labelled is None and args.labelled_list is None:
        train_slices = 'hsam'  # HSAM_LA_4, or a draw when the source lacks its cases
    return run_conversion(lambda: convert_la(
        args.src, args.dst, labelled=args.labelled, labelled_list=args.labelled_list,
        all_train=args.all_train, spacing=args.spacing, overwrite=args.overwrite, log=print,
        train_slices=None if train_slices == 'all' else train_slices))


if __name__ == '__main__':
    sys.exit(main())

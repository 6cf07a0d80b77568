"""Convert the UA-MT-preprocessed left atrium (LA) MRI release into mmsam's slice/volume format.

    python tools/dataset_converters/la.py SRC DST [--labelled N | --labelled-list FILE]
        [--all-train] [--spacing Z Y X] [--overwrite]

Source: the 2018 Atrial Segmentation Challenge data as preprocessed and released by UA-MT
(Yu et al., 2019) and used unchanged by BCP, SS-Net, MC-Net, MLB-Seg and H-SAM::

    SRC/train.list, SRC/test.list            one case id per line (80 and 20 ids)
    SRC/2018LA_Seg_Training Set/<case>/mri_norm2.h5
        image  float (X, Y, Z): z-scored LGE-MRI, cropped around the atrium
        label  (X, Y, Z): 0 background, 1 left atrium

Axis order: UA-MT wrote ``image``/``label`` straight from ``nrrd.read`` of the challenge's
``lgemri.nrrd``/``laendo.nrrd``, which index voxels (x, y, z) (pynrrd's default Fortran order;
UA-MT's code calls the axes w, h, d), z being the slice axis (88 slices in the originals).
Volumes are transposed by :data:`AXES` = (2, 0, 1) to (D, H, W) = (z, x, y): slice ``k`` is
``image[:, :, k]``, exactly the 2D array that the 2D pipelines built on this release (e.g.
MLB-Seg's LA loader) cut, so slices and predictions line up with theirs pixel for pixel. (A
(z, y, x) order would only transpose each slice in-plane; the in-plane grid is isotropic.)

Intensity: the release is z-scored per volume; each volume is rescaled linearly to [0, 1] by
its own minimum and maximum (``(v - min) / (max - min)``; a constant volume becomes 0).

Labels: {0: background, 1: left_atrium}; any other value is an error.

Spacing: the release stores none (UA-MT's crop keeps the challenge's isotropic 0.625 mm grid,
but the value is not in the files), so volumes get spacing (1, 1, 1): HD95 in voxels, as the
UA-MT/BCP evaluations report it. A ``spacing`` attribute (of the file or of ``image``) or
dataset, in the file's (x, y, z) order, is used when present; ``--spacing Z Y X`` overrides
both (e.g. ``--spacing 0.625 0.625 0.625`` for HD95 in mm).

Split (UA-MT/BCP): ``train.list`` cases are training cases, ``test.list`` cases are written as
test volumes (``splits/test.txt``). Only the labelled training cases are used to train H-SAM:
by default the first 4 lines of ``train.list``: UA-MT's and BCP's code take the first N
cases of ``train.list`` as labelled (N = 4 for 5%, 16 for 20%); ``--labelled N`` takes the
first N, ``--labelled-list FILE`` names them (ids from ``train.list``). All slices of the
labelled cases (empty ones included) are written; ``splits/train.txt`` lists, on the command
line by default, H-SAM's published training slices (official ``lists/lists_LA_4/train.txt``,
the foreground slices of the first 4 ``train.list`` scans, :data:`HSAM_LA_4`, shipped in
``mmsam/datasets/splits/hsam/``), or with ``--labelled``/``--labelled-list`` or
``--train-slices all`` every written slice of the labelled cases. With
``--all-train`` the slices of all training cases are written too and listed in
``splits/train_all.txt``.

Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once complete
(``meta.json`` last), so a failed run leaves nothing at ``DST``.
"""
import os.path as osp
import warnings
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mmsam.datasets.converters import name_lists
from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters.name_lists import read_name_list
from mmsam.datasets.converters.output_folders import check_folders
from mmsam.datasets.converters.slice_lists import labelled_cases_from_list
from mmsam.datasets.converters.slice_writing import (finish_slice_dataset, summary,
                                                     write_training_slices)
from mmsam.datasets.io.data_root import TEST_VOLUME_DIR
from mmsam.datasets.io.h5 import read_h5_arrays
from mmsam.datasets.io.npz import save_volume
from mmsam.datasets.la_dataset import CLASSES, PALETTE
from mmsam.datasets.splits import HSAM_LA_4
from mmsam.utils.io import staged_output

CONVERTER_NAME = 'LAConverter'
CONVERTER_VERSION = 1

IMAGE_DIR = '2018LA_Seg_Training Set'
H5_NAME = 'mri_norm2.h5'
AXES = (2, 0, 1)  # h5 (x, y, z) -> (z, x, y) = (D, H, W)
DEFAULT_LABELLED = 4
EXPECTED_COUNTS = (80, 20)


class LAConversionError(ConversionError):
    """An LA source file or argument that the conversion cannot use."""


def case_path(src: str, case: str) -> str:
    """Path of a case's ``mri_norm2.h5`` in the UA-MT release rooted at ``src``."""
    return osp.join(src, IMAGE_DIR, case, H5_NAME)


def read_case_list(path: str) -> List[str]:
    """Read a UA-MT case list: one case id per line.

    Blank lines and ``#`` comments are skipped; a line that is a path (``.../<case>`` or
    ``.../<case>/mri_norm2.h5``) gives its case folder name.

    Args:
        path (str): the list file.

    Returns:
        list[str]: case ids in file order.
    """
    def case_name(line: str) -> str:
        name = line.rstrip('/')
        if osp.basename(name) == H5_NAME:
            name = osp.dirname(name)
        return osp.basename(name)

    hint = ('; SRC must hold UA-MT\'s train.list and test.list next to '
            f'"{IMAGE_DIR}/"' if osp.basename(path) in ('train.list', 'test.list') else '')
    return read_name_list(path, 'case list', 'case', normalise=case_name, hint=hint,
                          error=LAConversionError)


def choose_labelled(train_cases: List[str], labelled: Optional[int] = DEFAULT_LABELLED,
                    labelled_list: Optional[str] = None) -> List[str]:
    """Pick the labelled cases: the first ``labelled`` of ``train.list``, or those listed."""
    return name_lists.choose_labelled(
        train_cases, labelled, labelled_list, read_case_list,
        'not in train.list; labelled cases must be training cases', LAConversionError)


def minmax_normalise(volume: np.ndarray) -> np.ndarray:
    """Rescale a volume linearly to [0, 1] by its own minimum and maximum.

    Args:
        volume (ndarray): (D, H, W) intensities.

    Returns:
        ndarray: (D, H, W) float32 in [0, 1]; all zeros for a constant volume.
    """
    volume = np.asarray(volume, dtype=np.float64)
    low, high = volume.min(), volume.max()
    if high <= low:
        return np.zeros(volume.shape, dtype=np.float32)
    return ((volume - low) / (high - low)).astype(np.float32)


def _binary_label(label, path):
    """Check that ``label`` holds only 0 and 1; return it as uint8."""
    label = np.asarray(label)
    values = np.unique(label)
    if not np.all(np.isin(values, (0, 1))):
        raise LAConversionError(f'{path}: label values {values[:10].tolist()} are not 0/1 '
                                '(background/left atrium); is this a mri_norm2.h5 of UA-MT\'s '
                                'release?')
    return label.astype(np.uint8)


def _h5_spacing(h5, path):
    """The file's own ``spacing`` (attribute or dataset) reordered to (z, x, y), or None."""
    for holder in (h5.attrs, h5['image'].attrs, h5):
        if 'spacing' in holder:
            value = np.asarray(holder['spacing'][()] if holder is h5 else holder['spacing'],
                               dtype=np.float64).ravel()
            if value.shape != (3, ) or not np.all(np.isfinite(value)) or np.any(value <= 0):
                raise LAConversionError(f'{path}: "spacing" {value.tolist()} is not 3 positive '
                                        'numbers (x, y, z); fix the file or pass --spacing')
            return tuple(float(value[a]) for a in AXES)
    return None


def read_la_case(path: str) -> Tuple[np.ndarray, np.ndarray, Optional[tuple]]:
    """Read one UA-MT ``mri_norm2.h5`` as an axial-slices-first volume.

    Args:
        path (str): the ``.h5`` file, datasets ``image`` and ``label`` of shape (X, Y, Z).

    Returns:
        tuple: ``image`` (D, H, W) float32 in [0, 1] (per-volume min-max), ``label``
        (D, H, W) uint8 in {0, 1}, ``spacing`` (z, x, y) tuple of floats or None when the file
        has none.
    """
    arrays, spacing = read_h5_arrays(
        path, ('image', 'label'), LAConversionError,
        'UA-MT\'s mri_norm2.h5 holds "image" and "label": re-download the release',
        extra=lambda h5: _h5_spacing(h5, path))
    image, label = arrays['image'], arrays['label']
    if image.ndim != 3 or label.shape != image.shape:
        raise LAConversionError(f'{path}: expected 3-D image and label of one shape, got image '
                                f'{image.shape} and label {label.shape}; the file is damaged or '
                                'not from UA-MT\'s release: re-download it')
    if not np.all(np.isfinite(image)):
        raise LAConversionError(f'{path}: image contains NaN/inf; re-download the file')
    image = np.ascontiguousarray(np.transpose(image, AXES))
    label = np.ascontiguousarray(np.transpose(_binary_label(label, path), AXES))
    return minmax_normalise(image), label, spacing


def convert_la(src: str, dst: str, labelled: Optional[int] = None,
               labelled_list: Optional[str] = None, all_train: bool = False,
               spacing: Optional[Sequence[float]] = None, overwrite: bool = False,
               log: Optional[Callable[[str], None]] = None,
               train_slices: Optional[str] = None) -> dict:
    """Convert UA-MT's LA release at ``src`` into mmsam's format at ``dst``.

    Writes the slice-dataset layout (see the package docstring), with ``train_all.txt`` and
    every training case's slices when ``all_train``.

    Args:
        src (str): release folder with ``train.list``, ``test.list`` and
            ``2018LA_Seg_Training Set/``.
        dst (str): output data root (see the package docstring).
        labelled (int | None): number of leading ``train.list`` cases used as labelled;
            None: 4, or with ``train_slices`` the cases that list names.
        labelled_list (str | None): file naming the labelled cases instead.
        all_train (bool): also write the slices of every training case (``train_all``).
        spacing (sequence[float] | None): (z, y, x) voxel size for every test volume; default
            the file's ``spacing`` if any, else (1, 1, 1).
        train_slices (str | None): file of slice names (``<case>_sliceNNN``) that
            ``splits/train.txt`` lists instead of every slice of the labelled cases, e.g. H-SAM's
            published foreground slices (``'hsam'``: :data:`HSAM_LA_4`, the command line's default).
        overwrite (bool), log (callable | None): see the package docstring.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=LAConversionError)
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise LAConversionError(f'spacing {spacing} must be 3 positive numbers (z, y, x)')
    train_cases = read_case_list(osp.join(src, 'train.list'))
    test_cases = read_case_list(osp.join(src, 'test.list'))
    overlap = sorted(set(train_cases) & set(test_cases))
    if overlap:
        raise LAConversionError(f'case(s) {overlap} are in both train.list and test.list of '
                                f'{src}; use UA-MT\'s unmodified lists')
    if (len(train_cases), len(test_cases)) != EXPECTED_COUNTS:
        warnings.warn(f'{src}: {len(train_cases)} training / {len(test_cases)} test cases, not '
                      f'UA-MT\'s {EXPECTED_COUNTS[0]} / {EXPECTED_COUNTS[1]}; converting them '
                      'as listed')
    train_slices, labelled_cases = labelled_cases_from_list(
        src, train_slices, HSAM_LA_4, train_cases, labelled, labelled_list, DEFAULT_LABELLED,
        LAConversionError)
    if labelled_cases is None:
        labelled_cases = choose_labelled(train_cases, DEFAULT_LABELLED if labelled is None
                                         else labelled, labelled_list)
    sliced = train_cases if all_train else labelled_cases
    missing = [case_path(src, c) for c in (*sliced, *test_cases)
               if not osp.isfile(case_path(src, c))]
    if missing:
        raise LAConversionError(f'{len(missing)} source file(s) do not exist, e.g. {missing[0]}; '
                                'the release is incomplete: re-download or re-extract it')

    with staged_output(dst) as tmp:
        names, foreground = write_training_slices(
            tmp, sliced, lambda case: read_la_case(case_path(src, case)), log)
        own_spacing = False
        for i, case in enumerate(test_cases, 1):
            image, label, own = read_la_case(case_path(src, case))
            own_spacing = own_spacing or own is not None
            case_spacing = spacing or own or (1.0, 1.0, 1.0)
            log(f'[test {i}/{len(test_cases)}] {case}: volume {image.shape}')
            save_volume(osp.join(tmp, TEST_VOLUME_DIR, f'{case}.npz'), image, label,
                        spacing=case_spacing)
        meta = finish_slice_dataset(tmp, dict(
            classes=list(CLASSES), palette=[list(c) for c in PALETTE],
            source=dict(
                dataset='2018 Atrial Segmentation Challenge (left atrium, LGE-MRI)',
                release='UA-MT preprocessed mri_norm2.h5 (image, label as (x, y, z))',
                path=src),
            axes='(D, H, W) = (z, x, y): slice k is the h5 array [:, :, k]',
            intensity='per-volume min-max to [0, 1] of the z-scored release',
            spacing_note=('(z, y, x) from --spacing' if spacing else
                          'UA-MT\'s h5 files carry no spacing (the challenge grid is isotropic '
                          '0.625 mm): (1, 1, 1) unless a file has its own "spacing", so HD95 '
                          'is in voxels'),
            spacing_known=bool(spacing) or own_spacing,
            split='UA-MT/BCP: train.list / test.list'),
            names, foreground, train_cases, labelled_cases, test_cases, train_slices, all_train,
            dict(name=CONVERTER_NAME, version=CONVERTER_VERSION), LAConversionError)
    log(summary(dst, meta))
    return meta

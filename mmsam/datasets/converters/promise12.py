"""Convert the PROMISE12 prostate MRI training data into mmsam's slice/volume format.

    python tools/dataset_converters/promise12.py SRC DST [--labelled N | --labelled-list FILE]
        [--test-list FILE] [--all-train] [--overwrite]

Source: the 50 training cases of the MICCAI 2012 Prostate MR Image Segmentation challenge
(Litjens et al., 2014), as distributed: ``SRC/CaseNN.mhd`` with its ``CaseNN.raw`` (or a
zlib-compressed ``.zraw``) and ``SRC/CaseNN_segmentation.mhd`` (+ data file), NN = 00..49.
MetaImage files are read by :func:`mmsam.datasets.io.metaimage.read_metaimage` (numpy only).

Axis order: a MetaImage stores x fastest, so its voxels read as a (z, y, x) C-order array:
transversal slices first, (D, H, W) as mmsam stores them. The header's direction
(``TransformMatrix``) is not applied: slices are kept as stored.

Intensity: MR intensities have no fixed scale and a few very bright voxels, so each volume is
clipped to its own 0.5th and 99.5th percentiles and then rescaled linearly to [0, 1]
(``(clip(v, p0.5, p99.5) - p0.5) / (p99.5 - p0.5)``; a volume with p0.5 == p99.5 becomes 0).

Labels: {0: background, 1: prostate}; any other value is an error.

Spacing: ``ElementSpacing`` (x, y, z) of the image header, reordered to (z, y, x) mm.

Split (MLB-Seg, followed by H-SAM: 40 training / 10 test cases, 3 labelled training cases):
the command line defaults to H-SAM's published lists (official ``lists/lists_PROMISE_3``,
shipped in ``mmsam/datasets/splits/hsam/``): test cases Case16, 35, 34, 49, 23, 12,
28, 43, 20, 13 (:data:`HSAM_PROMISE12_TEST`) and, as ``splits/train.txt``, the foreground slices
of the labelled Case29, Case14 and Case05 (:data:`HSAM_PROMISE12_3`). Options: ``--test-list
FILE`` or ``last10`` (Case40-Case49, :data:`DEFAULT_TEST_CASES`, the Python function's
default), ``--labelled N`` for the first N training cases, ``--labelled-list FILE`` to name
them, ``--train-slices all`` for every slice of the labelled cases. List files hold one case
a line (``Case07``, ``Case07.mhd`` or ``7``). All slices of the labelled cases (empty ones
included) are written; ``splits/train.txt`` lists the published slices or, without them, all
of them; with ``--all-train`` the slices of all training cases are
written too and listed in ``splits/train_all.txt``; test cases are volumes in
``splits/test.txt``.

Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once complete
(``meta.json`` last), so a failed run leaves nothing at ``DST``. Every header, and that its
data file exists, is checked before anything is written.
"""
import os
import os.path as osp
import re
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
from mmsam.datasets.io import metaimage
from mmsam.datasets.io.data_root import TEST_VOLUME_DIR
from mmsam.datasets.io.npz import save_volume
from mmsam.datasets.promise12_dataset import CLASSES, PALETTE
from mmsam.datasets.splits import HSAM_PROMISE12_3
from mmsam.utils.io import staged_output

CONVERTER_NAME = 'PROMISE12Converter'
CONVERTER_VERSION = 1

ALL_CASES = tuple(f'Case{n:02d}' for n in range(50))
DEFAULT_TEST_CASES = ALL_CASES[40:]
DEFAULT_LABELLED = 3
PERCENTILES = (0.5, 99.5)

_CASE_RE = re.compile(r'^Case(\d+)\.mhd$')

class PROMISE12ConversionError(ConversionError):
    """A PROMISE12 source file or argument that the conversion cannot use."""


def read_metaimage(path: str) -> Tuple[np.ndarray, tuple]:
    """Read a PROMISE12 MetaImage (:func:`mmsam.datasets.io.metaimage.read_metaimage`).

    Args:
        path (str): the ``.mhd`` header file.

    Returns:
        tuple: ``array`` ((z, y, x), native byte order) and ``spacing`` ((z, y, x) mm).

    Raises:
        PROMISE12ConversionError: the header or its data file is unusable.
    """
    return metaimage.read_metaimage(path, error=PROMISE12ConversionError)


# ---------------------------------------------------------------------------------------------
# cases and splits


def image_path(src: str, case: str) -> str:
    return osp.join(src, f'{case}.mhd')


def segmentation_path(src: str, case: str) -> str:
    return osp.join(src, f'{case}_segmentation.mhd')


def find_cases(src: str) -> List[str]:
    """Case names (``CaseNN``) of the image headers in ``src``, sorted by number."""
    found = [(int(m.group(1)), f[:-4]) for f in os.listdir(src)
             for m in [_CASE_RE.match(f)] if m]
    return [name for _, name in sorted(found)]


def read_case_list(path: str) -> List[str]:
    """Read a file of case names (``Case07``, ``Case07.mhd`` or ``7``), one a line.

    Args:
        path (str): the list file; blank lines and ``#`` comments are skipped.

    Returns:
        list[str]: ``CaseNN`` names in file order.
    """
    def case_name(line: str) -> str:
        name = osp.basename(line)
        name = name[:-4] if name.endswith('.mhd') else name
        if name.isdigit():
            name = f'Case{int(name):02d}'
        if not re.fullmatch(r'Case\d+', name):
            raise PROMISE12ConversionError(f'case list {path}: {line!r} is not a case name like '
                                           'Case07')
        return name

    return read_name_list(path, 'case list', 'case', normalise=case_name,
                          error=PROMISE12ConversionError)


def choose_labelled(train_cases: List[str], labelled: Optional[int] = DEFAULT_LABELLED,
                    labelled_list: Optional[str] = None) -> List[str]:
    """Pick the labelled cases: the first ``labelled`` training cases, or those listed."""
    return name_lists.choose_labelled(
        train_cases, labelled, labelled_list, read_case_list,
        'not training cases (test cases and cases missing from SRC cannot be labelled)',
        PROMISE12ConversionError)


def percentile_normalise(volume: np.ndarray, percentiles: Tuple[float, float] = PERCENTILES
                        ) -> np.ndarray:
    """Clip a volume to its own low/high percentiles and rescale it linearly to [0, 1].

    Args:
        volume (ndarray): (D, H, W) intensities.
        percentiles (tuple[float, float]): the clipping percentiles, default (0.5, 99.5).

    Returns:
        ndarray: (D, H, W) float32 in [0, 1]; all zeros when the two percentiles are equal.
    """
    volume = np.asarray(volume, dtype=np.float64)
    low, high = np.percentile(volume, percentiles)
    if high <= low:
        return np.zeros(volume.shape, dtype=np.float32)
    return ((np.clip(volume, low, high) - low) / (high - low)).astype(np.float32)


def read_promise12_case(src, case):
    """Read one PROMISE12 case: normalised image, binary label and spacing.

    Args:
        src (str): folder holding ``<case>.mhd`` and ``<case>_segmentation.mhd``.
        case (str): e.g. ``'Case07'``.

    Returns:
        tuple: ``image`` (D, H, W) float32 in [0, 1], ``label`` (D, H, W) uint8 in {0, 1},
        ``spacing`` (z, y, x) tuple of floats (mm).
    """
    img_path, seg_path = image_path(src, case), segmentation_path(src, case)
    image, spacing = read_metaimage(img_path)
    label, seg_spacing = read_metaimage(seg_path)
    if image.ndim != 3 or label.shape != image.shape:
        raise PROMISE12ConversionError(f'{img_path} and {seg_path}: expected one 3-D shape, got '
                                       f'{image.shape} and {label.shape}; the segmentation '
                                       'does not belong to the image: re-extract the release')
    if not np.allclose(spacing, seg_spacing, rtol=1e-3):
        warnings.warn(f'{seg_path}: spacing {seg_spacing} differs from the image\'s {spacing}; '
                      'using the image\'s')
    if not np.all(np.isfinite(image)):
        raise PROMISE12ConversionError(f'{img_path}: image contains NaN/inf; re-download it')
    values = np.unique(label)
    if not np.all(np.isin(values, (0, 1))):
        raise PROMISE12ConversionError(f'{seg_path}: label values {values[:10].tolist()} are not '
                                       '0/1 (background/prostate); is it a PROMISE12 '
                                       'segmentation? Re-extract the release')
    return percentile_normalise(image), label.astype(np.uint8), tuple(float(s) for s in spacing)


# ---------------------------------------------------------------------------------------------
# conversion


def _check_sources(src, cases):
    """Check that every needed header parses and its data file exists, before any writing."""
    for case in cases:
        for path in (image_path(src, case), segmentation_path(src, case)):
            if not osp.isfile(path):
                raise PROMISE12ConversionError(f'{path} does not exist; the data are incomplete: '
                                               're-download or re-extract them')
            data_file = metaimage.metaimage_layout(path, PROMISE12ConversionError)['data_file']
            if not osp.isfile(data_file):
                raise PROMISE12ConversionError(f'{data_file}, the data file of {path}, does not '
                                               'exist; re-download or re-extract it')


def convert_promise12(src: str, dst: str, labelled: Optional[int] = None,
                      labelled_list: Optional[str] = None,
                      test_cases: Optional[Sequence[str]] = None, test_list: Optional[str] = None,
                      all_train: bool = False, overwrite: bool = False,
                      log: Optional[Callable[[str], None]] = None,
                      train_slices: Optional[str] = None) -> dict:
    """Convert PROMISE12's training cases at ``src`` into mmsam's format at ``dst``.

    Writes the slice-dataset layout (see the package docstring), with ``train_all.txt`` and
    every training case's slices when ``all_train``.

    Args:
        src (str): folder with ``CaseNN.mhd`` and ``CaseNN_segmentation.mhd`` (+ data files).
        dst (str): output data root (see the package docstring).
        labelled (int | None): number of leading training cases used as labelled; None: 3,
            or with ``train_slices`` the cases that list names.
        labelled_list (str | None): file naming the labelled cases instead.
        test_cases (sequence[str] | None): test case names; default Case40-Case49.
        test_list (str | None): file naming the test cases (overrides ``test_cases``).
        all_train (bool): also write the slices of every training case (``train_all``).
        overwrite (bool): replace a previous output of this converter at ``dst``.
        log (callable | None): called with progress messages.
        train_slices (str | None): file of slice names (``<case>_sliceNNN``) that
            ``splits/train.txt`` lists instead of every slice of the labelled cases, e.g. H-SAM's
            published foreground slices (``'hsam'``: :data:`HSAM_PROMISE12_3`, the command line's
            default together with the test cases of :data:`HSAM_PROMISE12_TEST`).

    Returns:
        dict: the contents of ``meta.json``.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=PROMISE12ConversionError)
    cases = find_cases(src)
    if test_list is not None:
        test_cases = read_case_list(test_list)
    test_cases = list(DEFAULT_TEST_CASES if test_cases is None else test_cases)
    absent = [c for c in test_cases if c not in cases]
    if absent:
        raise PROMISE12ConversionError(f'test case(s) {absent} have no .mhd in {src} (e.g. '
                                       f'{image_path(src, absent[0])} does not exist); the data '
                                       'are incomplete, or pass the test cases you have')
    train_cases = [c for c in cases if c not in test_cases]
    if len(cases) != len(ALL_CASES):
        warnings.warn(f'{src} has {len(cases)} cases, not PROMISE12\'s {len(ALL_CASES)} training '
                      f'cases; converting {len(train_cases)} training / {len(test_cases)} test')
    if not train_cases:
        raise PROMISE12ConversionError(f'{src} has no training cases besides the test cases')
    train_slices, labelled_cases = labelled_cases_from_list(
        src, train_slices, HSAM_PROMISE12_3, train_cases, labelled, labelled_list, DEFAULT_LABELLED,
        PROMISE12ConversionError)
    if labelled_cases is None:
        labelled_cases = choose_labelled(train_cases, DEFAULT_LABELLED if labelled is None
                                         else labelled, labelled_list)
    sliced = train_cases if all_train else labelled_cases
    _check_sources(src, [*sliced, *test_cases])

    with staged_output(dst) as tmp:
        names, foreground = write_training_slices(
            tmp, sliced, lambda case: read_promise12_case(src, case), log)
        for i, case in enumerate(test_cases, 1):
            image, label, spacing = read_promise12_case(src, case)
            log(f'[test {i}/{len(test_cases)}] {case}: volume {image.shape}, spacing {spacing}')
            save_volume(osp.join(tmp, TEST_VOLUME_DIR, f'{case}.npz'), image, label,
                        spacing=spacing)
        meta = finish_slice_dataset(tmp, dict(
            classes=list(CLASSES), palette=[list(c) for c in PALETTE],
            source=dict(dataset='PROMISE12 (MICCAI 2012 prostate MR segmentation), training '
                                'cases', format='MetaImage CaseNN.mhd / CaseNN_segmentation.mhd',
                        path=src),
            axes='(D, H, W) = (z, y, x) as stored; header direction not applied',
            intensity=f'per volume: clip to the {PERCENTILES[0]}-{PERCENTILES[1]} percentiles, '
                      'then min-max to [0, 1]',
            spacing_note='(z, y, x) mm from the image header\'s ElementSpacing',
            spacing_known=True,
            split=('MLB-Seg 40/10 (its exact lists are unpublished): test = '
                   + ('given list' if test_list or test_cases != list(DEFAULT_TEST_CASES)
                      else 'Case40-Case49') + ', labelled = '
                   + ('given list' if labelled_list else f'first {len(labelled_cases)} training '
                                                          'cases'))),
            names, foreground, train_cases, labelled_cases, test_cases, train_slices, all_train,
            dict(name=CONVERTER_NAME, version=CONVERTER_VERSION), PROMISE12ConversionError)
    log(summary(dst, meta))
    return meta

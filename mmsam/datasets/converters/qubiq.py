"""Convert the QUBIQ 2020 kidney data into mmsam's multi-annotator format.

    python tools/dataset_converters/qubiq.py SRC DST [--test-cases FILE] [--val-cases FILE]
        [--overwrite]

Source: the challenge's case folders, anywhere under SRC (e.g.
``SRC/training_data_v2/kidney/Training/case01/`` and
``SRC/validation_data_v2/kidney/Validation/case01/``)::

    caseNN/image.nii.gz                 2D CT image, stored (H, W) or (H, W, 1)
    caseNN/task01_seg01..03.nii.gz      the 3 annotators' kidney masks, 0/1 or 0/255

Every folder under SRC holding an ``image.nii.gz`` is a case; when some case paths contain a
folder named ``kidney`` (SRC is the whole challenge release, all tasks), only those are taken.
A case's id is its path relative to SRC with ``/`` and other characters outside
``A-Za-z0-9._-`` replaced by ``_`` (e.g. ``training_data_v2_kidney_Training_case01``).

Arrays are kept in nibabel's index order (no reorientation; image and masks share it).
Intensities are normalised per image: clipped to its 0.5 and 99.5 percentiles, then min-max
rescaled to [0, 1] (a constant image becomes zeros). A mask is thresholded at half its maximum
(so 0/1 and 0/255 both give uint8 0/1; an all-zero mask stays empty).

Split (SeqSAM's default 20 train / 4 test, as the official SeqSAM code reads the release): the
``test`` cases are those of the release's validation folder, chosen by name: every case with a
folder named ``Validation`` or ``validation_data*`` (any case) on its path, e.g.
``validation_data_v2/kidney/Validation/case01``; all other cases are ``train`` (the 20 of
``training_data_v2/kidney/Training``). Without such a folder under SRC the conversion stops and
asks for ``--test-cases``. ``--test-cases FILE`` names the test cases instead;
``--val-cases FILE`` takes the named cases out of ``train`` into a ``val`` split (no
``val`` split otherwise). A list line may be a case id, a path relative to SRC or, when it is
unique, a case folder name (``case01``).

Output: ``DST/samples/<id>.npz`` (``image`` (H, W) float32, ``masks`` (3, H, W) uint8),
``DST/splits/{train,[val,]test}.txt`` and ``DST/meta.json`` (last), written to a temporary
folder next to ``DST`` and renamed to ``DST`` once complete, so a failed run leaves nothing.
"""
import os
import os.path as osp
import re
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters.name_lists import read_name_list
from mmsam.datasets.converters.output_folders import check_folders
from mmsam.datasets.io.data_root import write_meta, write_split
from mmsam.datasets.io.nifti import open_nifti, read_nifti_voxels
from mmsam.datasets.multi_annotator_dataset import QUBIQKidneyDataset, SAMPLE_DIR
from mmsam.utils.io import atomic_savez, staged_output

CONVERTER_NAME = 'QUBIQKidneyConverter'
CONVERTER_VERSION = 1
IMAGE_NAME = 'image.nii.gz'
SEG_PATTERN = re.compile(r'^task01_seg(\d+)\.nii(\.gz)?$')
NUM_ANNOTATORS = 3
DEFAULT_TEST = 4  # the release's validation cases, SeqSAM's test set
EXPECTED_CASES = 24
PERCENTILES = (0.5, 99.5)
STRUCTURE = 'kidney'
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


class QUBIQConversionError(ConversionError):
    """A QUBIQ source file or argument that the conversion cannot use."""


def find_cases(src: str) -> dict:
    """Find the case folders (holding ``image.nii.gz``) under ``src``.

    Args:
        src (str): the source folder.

    Returns:
        dict[str, str]: case id -> case folder, sorted by id.
    """
    folders = sorted(root for root, _, files in os.walk(src) if IMAGE_NAME in files)
    rel = [osp.relpath(f, src) for f in folders]
    kidney = [r for r in rel if STRUCTURE in [p.lower() for p in r.split(os.sep)]]
    if kidney:
        rel = kidney
    cases = {}
    for r in rel:
        case_id = _UNSAFE.sub('_', r.replace(os.sep, '_')).lstrip('.') or 'case'
        if case_id in cases:
            raise QUBIQConversionError(f'case folders {cases[case_id]} and {osp.join(src, r)} '
                                       f'both give the id {case_id}; rename one')
        cases[case_id] = osp.join(src, r)
    if not cases:
        raise QUBIQConversionError(f'no case folder with {IMAGE_NAME} under {src}; SRC must hold '
                                   'the QUBIQ kidney data (<split folder>/caseNN/image.nii.gz)')
    return dict(sorted(cases.items()))


def _load_nifti(path):
    """Read a NIfTI file's array as stored, squeezing a trailing singleton axis to (H, W)."""
    advice = 're-download or re-extract it'
    img = open_nifti(path, 2, QUBIQConversionError, advice, dims_hint=(
        'the kidney task is 2D ((H, W) or (H, W, 1)): is SRC the QUBIQ kidney data? '
        '(re-extract the release)'))
    array = read_nifti_voxels(img, path, QUBIQConversionError, advice, dtype=None)
    if not np.all(np.isfinite(array)):
        raise QUBIQConversionError(f'{path}: contains NaN/inf')
    return array


def normalise_image(image: np.ndarray) -> np.ndarray:
    """Clip an image to its 0.5-99.5 percentiles and min-max it to [0, 1].

    Args:
        image (ndarray): (H, W) intensities.

    Returns:
        ndarray: (H, W) float32 in [0, 1]; zeros for a constant image.
    """
    image = np.asarray(image, dtype=np.float64)
    low, high = np.percentile(image, PERCENTILES)
    if high <= low:
        return np.zeros(image.shape, np.float32)
    return ((np.clip(image, low, high) - low) / (high - low)).astype(np.float32)


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """Threshold an annotator mask at half its maximum.

    Args:
        mask (ndarray): (H, W) mask, e.g. 0/1 or 0/255.

    Returns:
        ndarray: (H, W) uint8 in {0, 1}; empty when the mask has no positive value.
    """
    mask = np.asarray(mask, dtype=np.float64)
    high = mask.max()
    if high <= 0:
        return np.zeros(mask.shape, np.uint8)
    return (mask > high / 2).astype(np.uint8)


def seg_paths(folder: str, num_annotators: int = NUM_ANNOTATORS) -> List[str]:
    """The annotators' mask files of a case, ordered by annotator number."""
    found = sorted((int(m.group(1)), name) for name in os.listdir(folder)
                   for m in [SEG_PATTERN.match(name)] if m)
    if len(found) != num_annotators:
        raise QUBIQConversionError(f'{folder}: found {len(found)} annotator mask(s) '
                                   f'{[n for _, n in found]}, expected {num_annotators} '
                                   '(task01_seg01..03.nii.gz)')
    return [osp.join(folder, name) for _, name in found]


def read_case(folder, num_annotators=NUM_ANNOTATORS):
    """Read a QUBIQ kidney case folder.

    Args:
        folder (str): the case folder.
        num_annotators (int): annotator masks expected.

    Returns:
        tuple: ``image`` (H, W) float32 in [0, 1] and ``masks`` (K, H, W) uint8 in {0, 1}.
    """
    image_path = osp.join(folder, IMAGE_NAME)
    image = _load_nifti(image_path)
    masks = []
    for path in seg_paths(folder, num_annotators):
        mask = _load_nifti(path)
        if mask.shape != image.shape:
            raise QUBIQConversionError(f'{path}: shape {mask.shape} differs from the image '
                                       f'{image_path} shape {image.shape}; the mask does not '
                                       'belong to the image: re-extract the release')
        masks.append(binary_mask(mask))
    return normalise_image(image), np.stack(masks)


def resolve_cases(path: Optional[str], cases: Dict[str, str], src: str, what: str) -> List[str]:
    """Read a case list file and map its lines to case ids.

    Args:
        path (str): the list file.
        cases (dict[str, str]): case id -> folder.
        src (str): the source folder.
        what (str): ``'test case list'`` or ``'val case list'``, for messages.

    Returns:
        list[str]: case ids in file order.
    """
    by_rel = {osp.normpath(osp.relpath(f, src)): c for c, f in cases.items()}
    names = {}
    for c, f in cases.items():
        names.setdefault(osp.basename(f), []).append(c)

    def to_id(line):
        if line in cases:
            return line
        rel = osp.normpath(line.rstrip('/'))
        if rel in by_rel:
            return by_rel[rel]
        if len(names.get(line, [])) == 1:
            return names[line][0]
        hint = ' (ambiguous: use a case id)' if line in names else ''
        raise QUBIQConversionError(f'{what} {path} names {line!r}, not a case under {src}{hint}; '
                                   f'case ids: {list(cases)}')

    return read_name_list(path, what, 'case', normalise=to_id, error=QUBIQConversionError)


def release_test_cases(cases: Dict[str, str], src: str) -> List[str]:
    """The cases of the challenge release's validation folder (SeqSAM's test set), by name.

    Args:
        cases (dict[str, str]): case id -> folder.
        src (str): the source folder.

    Returns:
        list[str]: the ids of the cases with a ``Validation`` / ``validation_data*`` folder on
        their path relative to ``src``.
    """
    def in_validation(folder):
        parts = [p.lower() for p in osp.relpath(folder, src).split(os.sep)[:-1]]
        return any(p == 'validation' or p.startswith('validation_data') for p in parts)

    test = [c for c, f in cases.items() if in_validation(f)]
    if not test:
        raise QUBIQConversionError(
            f'no case under {src} lies in the release\'s validation folder (a folder named '
            'Validation or validation_data*), which is SeqSAM\'s test set; point SRC at the whole '
            'release (training_data_v2 and validation_data_v2) or name the test cases with '
            '--test-cases FILE')
    if len(test) != DEFAULT_TEST:
        warnings.warn(f'{src}: {len(test)} validation cases, not the release\'s {DEFAULT_TEST}; '
                      'they are the test split')
    return test


def choose_splits(cases: Dict[str, str], src: str, test_cases: Optional[Sequence[str]] = None,
                  val_cases: Optional[Sequence[str]] = None) -> Dict[str, List[str]]:
    """Split the case ids into train/(val)/test.

    Args:
        cases (dict[str, str]): case id -> folder, sorted by id.
        src (str): the source folder.
        test_cases (str | None): file naming the test cases; default the cases of the
            release's validation folder (:func:`release_test_cases`).
        val_cases (str | None): file naming the val cases (taken out of train).

    Returns:
        dict[str, list[str]]: split name -> case ids (sorted), ``val`` only with ``val_cases``.
    """
    ids = list(cases)
    if test_cases is not None:
        test = resolve_cases(test_cases, cases, src, 'test case list')
    else:
        test = release_test_cases(cases, src)
    val = resolve_cases(val_cases, cases, src, 'val case list') if val_cases else []
    both = sorted(set(test) & set(val))
    if both:
        raise QUBIQConversionError(f'case(s) {both} are in both the test and the val list')
    train = [c for c in ids if c not in set(test) | set(val)]
    if not train:
        raise QUBIQConversionError('no case is left for training; shorten the test/val lists')
    splits = dict(train=train, test=sorted(test))
    if val_cases:
        splits['val'] = sorted(val)
    return splits


def convert_qubiq(src: str, dst: str, test_cases: Optional[Sequence[str]] = None,
                  val_cases: Optional[Sequence[str]] = None, overwrite: bool = False,
                  log: Optional[Callable[[str], None]] = None) -> dict:
    """Convert the QUBIQ 2020 kidney data under ``src`` into mmsam's format at ``dst``.

    Args:
        src (str): folder holding the case folders (at any depth).
        dst (str): output data root (see the package docstring).
        test_cases (str | None): file naming the test cases (default: the last 4 sorted).
        val_cases (str | None): file naming cases for a ``val`` split (default: none).
        overwrite (bool), log (callable | None): see the package docstring.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=QUBIQConversionError)
    cases = find_cases(src)
    if len(cases) != EXPECTED_CASES:
        warnings.warn(f'{src}: {len(cases)} kidney cases, not the challenge\'s '
                      f'{EXPECTED_CASES}; converting them as found')
    splits = choose_splits(cases, src, test_cases, val_cases)
    with staged_output(dst) as tmp:
        shapes = {}
        for i, (case_id, folder) in enumerate(cases.items(), 1):
            image, masks = read_case(folder)
            shapes[case_id] = list(image.shape)
            atomic_savez(osp.join(tmp, SAMPLE_DIR, f'{case_id}.npz'), image=image, masks=masks)
            log(f'[{i}/{len(cases)}] {case_id}: {image.shape[0]}x{image.shape[1]}')
        for name, ids in splits.items():
            write_split(tmp, name, ids)
        meta = dict(
            classes=list(QUBIQKidneyDataset.METAINFO['classes']),
            palette=[list(c) for c in QUBIQKidneyDataset.METAINFO['palette']],
            num_annotators=NUM_ANNOTATORS, sample_dir=SAMPLE_DIR,
            source=dict(dataset='QUBIQ 2020 kidney (2D CT, 3 annotators)', path=src,
                        cases={c: osp.relpath(f, src) for c, f in cases.items()}),
            intensity='per image: clip to the 0.5/99.5 percentiles, then min-max to [0, 1]',
            masks='thresholded at half of each mask\'s maximum',
            axes='nibabel index order, (H, W) = (i, j)',
            split=('test: ' + ('--test-cases list' if test_cases else
                               'the release\'s validation cases') + '; val: ' +
                   ('--val-cases list' if val_cases else 'none') + '; train: the rest'),
            splits=list(splits), cases_per_split=splits, shapes=shapes,
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: ' + ', '.join(f'{n} {len(c)}' for n, c in splits.items()))
    return meta

"""Convert a folder of NIfTI image/label pairs (your own data) into mmsam's slice/volume format.

    python tools/dataset_converters/nifti_folder.py SRC DST
        (--test-cases CASE [CASE ...] | --test-list FILE)
        [--classes background NAME ...] [--intensity window|hu|zscore] [--window LOW HIGH]
        [--train-volumes] [--target-spacing none|auto|Z,Y,X] [--overwrite]

Source: one image and one label map per case, named alike::

    SRC/images/<case>.nii.gz     (or .nii) a 3D volume
    SRC/labels/<case>.nii.gz     its label map on the same grid: integer ids, 0 = background

The cases named by ``--test-cases`` (or listed one a line in ``--test-list``) are the test
set, written whole to ``test_volumes/``; every other case is a training case, written slice by
slice to ``train_slices/`` (2D methods) and, with ``--train-volumes``, whole to
``train_volumes/`` (3D methods). Each volume: the NIfTI voxel array (x, y, z) transposed to
(D, H, W) = (z, y, x), without reorientation by the affine; spacing (z, y, x) mm from the
header zooms; labels checked to be integer ids below the number of ``--classes``.

Intensities (``meta.json`` ``intensity``):

* ``window`` (default, CT): clipped to ``--window LOW HIGH`` (default -125 275 HU, TransUNet's
  abdominal window) and rescaled to [0, 1] (``'unit'``) -- what the 2D configs expect;
* ``hu``: kept as they are, float32 (``'hu'``), with nnU-Net's CT statistics of the training
  cases' labelled voxels in ``ct_foreground`` (for ``NormalizeIntensity3D(mode='ct')``);
* ``zscore`` (MR): per volume ``(v - mean) / max(std, 1e-8)`` (``'zscore'``).

``--target-spacing`` resamples every case as nnU-Net does (``auto``: nnU-Net's target spacing
of the training cases); test volumes then keep ``native_label``, ``native_spacing`` and
``native_shape`` for evaluation on the original grid. Each mode keeps its order with
resampling: ``window`` windows after resampling (as before; nnU-Net has no window mode),
``zscore`` z-scores before (nnU-Net's ZScoreNormalization), and ``hu`` clips to the training
cases' foreground [0.5, 99.5] percentiles before (nnU-Net's CTNormalization; the stored values
stay HU, and the z-score, which commutes with resampling, is ``NormalizeIntensity3D`` at load
time). For that a resampling ``hu`` conversion reads each training case twice: a statistics pass
at native resolution first (as nnU-Net's fingerprint), then the conversion itself.

Without ``--classes`` the classes are ``background, class1, ..., classN`` with N the largest
id found. Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once
complete (``meta.json`` last), so a failed run leaves nothing at ``DST``.
"""
import os
import os.path as osp
from typing import Callable, Optional, Sequence, Union

import numpy as np

from mmsam.datasets.converters.case_volumes import (nifti_target_spacing, resample_case,
                                                    sample_cases_foreground)
from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters.name_lists import slice_names
from mmsam.datasets.converters.nifti_pairs import check_label_ids, read_nifti_pair
from mmsam.datasets.converters.nnunet_preprocessing import (FOREGROUND_SAMPLE_BUDGET,
                                                            ct_clip_range, foreground_stats,
                                                            parse_target_spacing,
                                                            sample_foreground)
from mmsam.datasets.converters.output_folders import check_folders
from mmsam.datasets.io.data_root import (TEST_VOLUME_DIR, TRAIN_SLICE_DIR, TRAIN_VOLUME_DIR,
                                         write_meta, write_split)
from mmsam.datasets.io.npz import save_case_volume, save_slice, save_volume
from mmsam.utils.io import staged_output
from mmsam.visualization.slice_overlay import class_colors

CONVERTER_NAME = 'NiftiFolderConverter'
CONVERTER_VERSION = 1
INTENSITY_MODES = ('window', 'hu', 'zscore')
META_INTENSITY = dict(window='unit', hu='hu', zscore='zscore')
DEFAULT_WINDOW = (-125.0, 275.0)
MAX_CLASSES = 256  # labels are stored as uint8
NIFTI_SUFFIXES = ('.nii.gz', '.nii')


class NiftiFolderConversionError(ConversionError):
    """A source file or argument of the NIfTI-folder conversion that cannot be used."""

    own_files = True  # the shared checks advise fixing the user's files, not a re-extraction


def case_name(filename: str) -> Optional[str]:
    """The case name of a NIfTI file name (``liver_007.nii.gz`` -> ``liver_007``), or None."""
    for suffix in NIFTI_SUFFIXES:
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[:-len(suffix)]
    return None


def _nifti_files(folder):
    """case -> path of the NIfTI files in ``folder``; a case given twice is an error."""
    files = {}
    for name in sorted(os.listdir(folder)):
        case = case_name(name)
        if case is None:
            continue
        if case in files:
            raise NiftiFolderConversionError(
                f'{folder} holds two files for case {case!r} ({osp.basename(files[case])} and '
                f'{name}); keep one')
        files[case] = osp.join(folder, name)
    return files


def find_cases(src: str) -> dict:
    """The (image, label) NIfTI paths of each case in ``SRC/images`` and ``SRC/labels``.

    Returns:
        dict[str, tuple[str, str]]: case -> (image path, label path), sorted by case.
    """
    folders = [osp.join(src, 'images'), osp.join(src, 'labels')]
    for folder in folders:
        if not osp.isdir(folder):
            raise NiftiFolderConversionError(
                f'{folder} does not exist: SRC must hold images/<case>.nii.gz and '
                'labels/<case>.nii.gz, one image and one label map per case, named alike')
    images, labels = (_nifti_files(f) for f in folders)
    if not images:
        raise NiftiFolderConversionError(f'{folders[0]} holds no .nii or .nii.gz file')
    unlabelled = sorted(set(images) - set(labels))
    orphans = sorted(set(labels) - set(images))
    if unlabelled or orphans:
        raise NiftiFolderConversionError(
            f'images and labels are not named alike: image(s) without a label in '
            f'{folders[1]}: {unlabelled or "none"}; label(s) without an image in {folders[0]}: '
            f'{orphans or "none"}. Name each pair <case>.nii.gz in both folders')
    return {case: (images[case], labels[case]) for case in sorted(images)}


def window_intensities(volume: np.ndarray, window: Optional[Sequence[float]]) -> np.ndarray:
    """Clip to ``window`` = (low, high) and rescale linearly to [0, 1]; float32."""
    low, high = window
    volume = np.clip(np.asarray(volume, dtype=np.float32), low, high)
    return ((volume - np.float32(low)) / np.float32(high - low)).astype(np.float32)


def zscore(volume: np.ndarray) -> np.ndarray:
    """``(v - mean) / max(std, 1e-8)`` of the volume itself (nnU-Net's ZScoreNormalization)."""
    volume = np.asarray(volume, dtype=np.float64)
    return ((volume - volume.mean()) / max(volume.std(), 1e-8)).astype(np.float32)


def _check_options(cases, test_cases, classes, intensity, window):
    unknown = [c for c in test_cases if c not in cases]
    if unknown:
        raise NiftiFolderConversionError(
            f'test case(s) {unknown} are not among the cases of SRC ({sorted(cases)}); name '
            'them by file name without .nii.gz')
    if len(set(test_cases)) != len(test_cases):
        raise NiftiFolderConversionError(f'test cases {test_cases} repeat a case')
    if not test_cases or len(test_cases) == len(cases):
        raise NiftiFolderConversionError(
            f'{len(test_cases)} of the {len(cases)} cases are test cases; at least one test and '
            'one training case are needed')
    if intensity not in INTENSITY_MODES:
        raise NiftiFolderConversionError(f'unknown intensity mode {intensity!r}; use one of '
                                         f'{list(INTENSITY_MODES)}')
    if window is not None:
        if intensity != 'window':
            raise NiftiFolderConversionError(f'--window is for --intensity window, not '
                                             f'{intensity}')
        if len(window) != 2 or not window[0] < window[1]:
            raise NiftiFolderConversionError(f'--window {window}: give LOW HIGH with LOW < HIGH')
    if classes is not None:
        if not 2 <= len(classes) <= MAX_CLASSES or len(set(classes)) != len(classes):
            raise NiftiFolderConversionError(
                f'--classes {classes}: give 2 to {MAX_CLASSES} distinct names, background first')


def convert_nifti_folder(src: str, dst: str, test_cases: Optional[Sequence[str]],
                         classes: Optional[Sequence[str]] = None, intensity: str = 'window',
                         window: Optional[Sequence[float]] = None, train_volumes: bool = False,
                         target_spacing: Union[None, str, Sequence[float]] = None,
                         overwrite: bool = False, log: Optional[Callable[[str], None]] = None
                        ) -> dict:
    """Convert ``SRC/images`` + ``SRC/labels`` NIfTI pairs into mmsam's format at ``dst``.

    Writes ``train_slices/``, ``test_volumes/``, with ``train_volumes`` also
    ``train_volumes/``, ``splits/{train,test}.txt`` (and ``train_volumes.txt``) and
    ``meta.json`` (see :mod:`mmsam.datasets.io.data_root`).

    Args:
        src (str): folder holding ``images/`` and ``labels/``.
        dst (str): output data root (see the package docstring).
        test_cases (list[str]): the cases of the test split.
        classes (list[str] | None): class names, background first; None: from the label ids.
        intensity (str): ``'window'``, ``'hu'`` or ``'zscore'``.
        window (tuple[float, float] | None): the HU window of ``'window'`` (default -125, 275).
        train_volumes (bool): also write the training cases whole to ``train_volumes/``.
        target_spacing: resampling target, as ``parse_target_spacing`` reads it.
        overwrite (bool), log (callable | None): see the package docstring.
    """
    log = log or (lambda msg: None)
    error = NiftiFolderConversionError
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=error)
    cases = find_cases(src)
    test_cases = list(test_cases)
    _check_options(cases, test_cases, classes, intensity, window)
    window = tuple(float(v) for v in (window or DEFAULT_WINDOW))
    target_spacing = parse_target_spacing(target_spacing, error)
    train_cases = [c for c in cases if c not in test_cases]
    if target_spacing == 'auto':
        target_spacing = nifti_target_spacing((cases[c][0] for c in train_cases), error)
    num_classes = len(classes) if classes else MAX_CLASSES

    def read_case(case):
        """The case's image (D, H, W), checked label ids (D, H, W) and spacing (z, y, x)."""
        image_path, label_path = cases[case]
        data = read_nifti_pair(image_path, label_path, error)
        label = check_label_ids(data['label'], num_classes, label_path, error)
        return data['image'], label, data['spacing']

    what = f'the training cases of {src}'
    ct_stats, clip_range = None, None
    if intensity == 'hu' and target_spacing is not None:
        # nnU-Net clips CT to the foreground percentiles before resampling: the statistics
        # pass over the training cases (native resolution, one case at a time) comes first, so
        # each training case is read twice; every case (test cases too, as nnU-Net's inference
        # preprocessing) is then clipped before it is resampled
        log(f'CT foreground statistics of {len(train_cases)} training cases')
        ct_stats = foreground_stats(sample_cases_foreground(
            (read_case(case)[:2] for case in train_cases), len(train_cases)), what, error)
        clip_range = ct_clip_range(ct_stats)

    train_slices, fg_samples, max_id = [], [], 0
    with staged_output(dst) as tmp:
        for i, case in enumerate(train_cases + test_cases, 1):
            is_test = case in test_cases
            log(f'[{i}/{len(cases)}] {case} ({"test" if is_test else "train"})')
            image, label, spacing = read_case(case)
            max_id = max(max_id, int(label.max(initial=0)))
            if intensity == 'hu' and not is_test and ct_stats is None:
                fg_samples.append(sample_foreground(
                    image, label, FOREGROUND_SAMPLE_BUDGET // len(train_cases)))
            if intensity == 'zscore':
                image = zscore(image)
            image, label, spacing, native = resample_case(image, label, spacing, target_spacing,
                                                          keep_native=is_test,
                                                          clip_range=clip_range)
            if intensity == 'window':
                image = window_intensities(image, window)
            if is_test:
                save_case_volume(osp.join(tmp, TEST_VOLUME_DIR, f'{case}.npz'), image, label,
                                 spacing, native)
                continue
            names = slice_names(case, image.shape[0])
            for k, name in enumerate(names):
                save_slice(osp.join(tmp, TRAIN_SLICE_DIR, f'{name}.npz'), image[k], label[k])
            train_slices += names
            if train_volumes:
                save_volume(osp.join(tmp, TRAIN_VOLUME_DIR, f'{case}.npz'), image, label,
                            spacing)
        if not classes:
            if max_id == 0:
                raise error(f'the labels in {osp.join(src, "labels")} hold only background (0); '
                            'nothing to segment')
            classes = ['background'] + [f'class{k}' for k in range(1, max_id + 1)]
        write_split(tmp, 'train', train_slices)
        write_split(tmp, 'test', test_cases)
        if train_volumes:
            write_split(tmp, 'train_volumes', train_cases)
        meta = dict(
            classes=list(classes), palette=[list(c) for c in class_colors(None, len(classes))],
            intensity=META_INTENSITY[intensity],
            hu_window=list(window) if intensity == 'window' else None,
            ct_foreground=(ct_stats or foreground_stats(fg_samples, what, error))
            if intensity == 'hu' else None,
            target_spacing=None if target_spacing is None else list(target_spacing),
            spacing_note='(z, y, x) mm from the NIfTI headers; volumes (D, H, W) are the stored '
                         'voxel arrays (x, y, z) transposed to (z, y, x), without reorientation',
            source=dict(path=src), train_cases=train_cases, test_cases=test_cases,
            num_train_slices=len(train_slices), train_volumes=bool(train_volumes),
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: {len(train_slices)} training slices of {len(train_cases)} cases, '
        f'{len(test_cases)} test volumes, classes {list(classes)}')
    return meta

"""Convert the AMOS22 abdominal CT data into mmsam's volume format with nnU-Net's 5 folds.

    python tools/dataset_converters/amos.py SRC DST [--include-validation]
        [--target-spacing none|auto|Z,Y,X] [--overwrite]

Source: the AMOS22 release (Ji et al., 2022)::

    SRC/dataset.json                     "labels": {"0": "background", "1": "spleen", ...}
    SRC/imagesTr/amos_XXXX.nii.gz        training images (CT: XXXX <= 500, MRI: > 500)
    SRC/labelsTr/amos_XXXX.nii.gz        their labels, 0 background and the 15 organs
    SRC/imagesVa/, SRC/labelsVa/         the validation images and labels
    SRC/imagesTs/                        test images without labels (not used)

Only CT cases (id <= 500) are converted. Labels: 1 spleen, 2 right kidney, 3 left kidney,
4 gallbladder, 5 esophagus, 6 liver, 7 stomach, 8 aorta, 9 inferior vena cava (postcava),
10 pancreas, 11 right adrenal gland, 12 left adrenal gland, 13 duodenum, 14 bladder,
15 prostate/uterus; any other id is an error. When ``dataset.json`` is present its label ids
must be 0-15.

Each case: the NIfTI voxel array (x, y, z) is transposed to (D, H, W) = (z, y, x), without
reorientation by the affine; spacing (z, y, x) from the header zooms; raw HU kept as float32
(``meta.json`` ``intensity: 'hu'``), with nnU-Net's CT statistics of the labelled voxels of all
converted cases in ``ct_foreground`` (``mean``, ``std``, ``percentile_00_5``,
``percentile_99_5``; nnU-Net computes them over its whole training set too).
``--target-spacing`` resamples as nnU-Net does (``auto``: nnU-Net's target spacing of the
converted cases); every volume then keeps ``native_label``, ``native_spacing`` and
``native_shape``, since each case is a validation case of one fold. nnU-Net clips CT to the
foreground [0.5, 99.5] percentiles before it resamples, so a resampling conversion reads every
case twice: a statistics pass at native resolution first (as nnU-Net's fingerprint), then each
case is clipped to ``ct_foreground``'s percentiles and resampled (the stored values stay HU;
the z-score, which commutes with resampling, is ``NormalizeIntensity3D`` at load time). Without
resampling the HU are stored unclipped and read once.

Split: every converted case goes to ``train_volumes/`` (``splits/train_volumes.txt``);
nnU-Net's 5-fold cross-validation, ``KFold(n_splits=5, shuffle=True, random_state=12345)``
over the sorted case names (see :func:`kfold_splits`), is written as
``splits/fold{k}_train.txt`` and ``splits/fold{k}_val.txt`` (k = 0..4). The pool is the 200
labelled CT training cases, plus the 100 CT validation cases with ``--include-validation``
(as nnU-Net's Dataset218).

Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once complete
(``meta.json`` last), so a failed run leaves nothing at ``DST``.
"""
import json
import os
import os.path as osp
import re
import warnings
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmsam.datasets.amos_volume_dataset import CLASSES, PALETTE
from mmsam.datasets.converters.case_volumes import (nifti_target_spacing, resample_case,
                                                    sample_cases_foreground)
from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters.nifti_pairs import check_label_ids, read_nifti_pair
from mmsam.datasets.converters.nnunet_preprocessing import (FOREGROUND_SAMPLE_BUDGET,
                                                            ct_clip_range, foreground_stats,
                                                            parse_target_spacing,
                                                            sample_foreground)
from mmsam.datasets.converters.output_folders import check_folders
from mmsam.datasets.io.data_root import TRAIN_VOLUME_DIR, write_meta, write_split
from mmsam.datasets.io.npz import save_case_volume
from mmsam.utils.io import staged_output

CONVERTER_NAME = 'AMOSConverter'
CONVERTER_VERSION = 1

MAX_CT_ID = 500
NUM_FOLDS = 5
FOLD_SEED = 12345
EXPECTED_CT = dict(Tr=200, Va=100)

_CASE_RE = re.compile(r'^(amos_(\d{4}))\.nii(?:\.gz)?$')


class AMOSConversionError(ConversionError):
    """An AMOS source file or argument that the conversion cannot use."""


def kfold_splits(names: Sequence[str], n_splits: int = NUM_FOLDS, seed: int = FOLD_SEED
                ) -> List[Tuple[List[str], List[str]]]:
    """nnU-Net's cross-validation folds: sklearn ``KFold(n_splits, shuffle=True, seed)``.

    Written without sklearn: the indices of the sorted names are shuffled by
    ``np.random.RandomState(seed)``; consecutive chunks of the permutation are the validation
    folds, the first ``n % n_splits`` one longer; each fold's lists come in sorted order, as
    sklearn's boolean masks give them.

    Args:
        names (sequence[str]): case names.
        n_splits (int): number of folds.
        seed (int): the ``random_state``.

    Returns:
        list[tuple[list[str], list[str]]]: (train, val) names of each fold.
    """
    names = sorted(names)
    n = len(names)
    if n < n_splits:
        raise AMOSConversionError(f'{n} case(s) cannot make {n_splits} cross-validation folds; '
                                  f'at least {n_splits} are needed')
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_splits, n // n_splits)
    sizes[:n % n_splits] += 1
    folds, start = [], 0
    for size in sizes:
        val = np.zeros(n, dtype=bool)
        val[order[start:start + size]] = True
        start += size
        folds.append(([names[i] for i in np.flatnonzero(~val)],
                      [names[i] for i in np.flatnonzero(val)]))
    return folds


def check_dataset_json(src: str) -> None:
    """Check ``SRC/dataset.json`` (if present) names the labels 0-15."""
    path = osp.join(src, 'dataset.json')
    if not osp.isfile(path):
        warnings.warn(f'{path} does not exist; assuming the AMOS22 label ids 0-15')
        return
    try:
        with open(path) as f:
            labels = json.load(f).get('labels', {})
        ids = sorted(int(k) for k in labels)
    except (OSError, ValueError, AttributeError, TypeError) as err:
        raise AMOSConversionError(f'cannot read the "labels" of {path} ({err}); re-extract the '
                                  'release') from err
    if ids != list(range(len(CLASSES))):
        raise AMOSConversionError(f'{path} lists label ids {ids}, not the AMOS22 ids 0-15 '
                                  f'({", ".join(CLASSES)}); is this the AMOS22 release?')


def find_cases(src: str, part: str) -> Tuple[dict, int]:
    """The CT cases of ``imagesXX``/``labelsXX`` (``part`` 'Tr' or 'Va').

    Returns:
        tuple[dict[str, tuple[str, str]], int]: case -> (image, label) paths, and the number of
        MRI cases skipped.
    """
    image_dir, label_dir = osp.join(src, f'images{part}'), osp.join(src, f'labels{part}')
    if not osp.isdir(image_dir):
        raise AMOSConversionError(f'{image_dir} does not exist: SRC must be the AMOS22 release '
                                  f'(imagesTr/, labelsTr/, imagesVa/, labelsVa/, dataset.json)')
    cases, mri = {}, 0
    for name in sorted(os.listdir(image_dir)):
        match = _CASE_RE.match(name)
        if match is None:
            if name.endswith(('.nii', '.nii.gz')):
                warnings.warn(f'{osp.join(image_dir, name)} is not named amos_XXXX.nii.gz; '
                              'skipped')
            continue
        if int(match.group(2)) > MAX_CT_ID:
            mri += 1
            continue
        cases[match.group(1)] = (osp.join(image_dir, name), osp.join(label_dir, name))
    if len(cases) != EXPECTED_CT[part]:
        warnings.warn(f'{image_dir} holds {len(cases)} CT case(s), the AMOS22 release '
                      f'{EXPECTED_CT[part]}; converting those present')
    return cases, mri


def _read_case(paths: Tuple[str, str]) -> Tuple[np.ndarray, np.ndarray,
                                                Tuple[float, float, float]]:
    """A case's HU (D, H, W), checked label ids (D, H, W) and spacing (z, y, x)."""
    image_path, label_path = paths
    data = read_nifti_pair(image_path, label_path, AMOSConversionError, min_depth=2)
    label = check_label_ids(data['label'], len(CLASSES), label_path, AMOSConversionError)
    return data['image'], label, data['spacing']


def convert_amos(src: str, dst: str, include_validation: bool = False,
                 target_spacing: Union[None, str, Sequence[float]] = None, overwrite: bool = False,
                 log: Optional[Callable[[str], None]] = None) -> dict:
    """Convert the AMOS22 CT cases at ``src`` into mmsam's volume format with 5 CV folds.

    Args:
        src (str): the AMOS22 release folder.
        dst (str): output data root (see the package docstring).
        include_validation (bool): add the labelled CT validation cases to the folds' pool.
        target_spacing: resampling target, as ``parse_target_spacing`` reads it.
        overwrite (bool), log (callable | None): see the package docstring.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=AMOSConversionError)
    target_spacing = parse_target_spacing(target_spacing, AMOSConversionError)
    check_dataset_json(src)
    cases, skipped = find_cases(src, 'Tr')
    if include_validation:
        val_cases, val_skipped = find_cases(src, 'Va')
        cases, skipped = {**cases, **val_cases}, dict(Tr=skipped, Va=val_skipped)
    else:
        skipped = dict(Tr=skipped)
    cases = dict(sorted(cases.items()))
    folds = kfold_splits(cases)
    if target_spacing == 'auto':
        target_spacing = nifti_target_spacing((image for image, _ in cases.values()),
                                              AMOSConversionError)

    what = f'the CT cases of {src}'
    ct_stats, samples = None, []
    if target_spacing is not None:
        # nnU-Net clips CT to the foreground percentiles before resampling: the statistics
        # pass (native resolution, one case at a time) comes first, so every case is read twice
        log(f'CT foreground statistics of {len(cases)} cases')
        ct_stats = foreground_stats(sample_cases_foreground(
            (_read_case(paths)[:2] for paths in cases.values()), len(cases)),
            what, AMOSConversionError)
    clip_range = None if ct_stats is None else ct_clip_range(ct_stats)
    with staged_output(dst) as tmp:
        for i, (case, paths) in enumerate(cases.items(), 1):
            log(f'[{i}/{len(cases)}] {case}')
            image, label, spacing = _read_case(paths)
            if ct_stats is None:  # not resampled: the statistics come from this one pass
                samples.append(sample_foreground(image, label,
                                                 FOREGROUND_SAMPLE_BUDGET // len(cases)))
            image, label, spacing, native = resample_case(image, label, spacing,
                                                          target_spacing, clip_range=clip_range)
            save_case_volume(osp.join(tmp, TRAIN_VOLUME_DIR, f'{case}.npz'), image, label,
                             spacing, native)
        write_split(tmp, 'train_volumes', list(cases))
        for k, (train, val) in enumerate(folds):
            write_split(tmp, f'fold{k}_train', train)
            write_split(tmp, f'fold{k}_val', val)
        meta = dict(
            classes=list(CLASSES), palette=PALETTE, intensity='hu',
            ct_foreground=ct_stats or foreground_stats(samples, what, AMOSConversionError),
            target_spacing=None if target_spacing is None else list(target_spacing),
            spacing_note='(z, y, x) mm from the NIfTI headers; volumes (D, H, W) are the stored '
                         'voxel arrays (x, y, z) transposed to (z, y, x), without reorientation',
            source=dict(path=src), include_validation=bool(include_validation),
            num_cases=len(cases), skipped_mri=skipped,
            folds=dict(n_splits=NUM_FOLDS, seed=FOLD_SEED,
                       rule='sklearn KFold(shuffle=True) over the sorted case names (nnU-Net)',
                       num_val=[len(val) for _, val in folds]),
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: {len(cases)} CT volumes, {NUM_FOLDS} folds')
    return meta

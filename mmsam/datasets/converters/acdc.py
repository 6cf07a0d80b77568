"""Convert the ACDC cardiac cine-MRI data into mmsam's volume format (3D methods).

    python tools/dataset_converters/acdc.py SRC DST [--target-spacing none|auto|Z,Y,X]
        [--overwrite]

Source: the ACDC challenge release (Bernard et al., 2018); only its 100 training patients
have labels::

    SRC/training/patientXXX/             (SRC may also be the training/ folder itself)
        Info.cfg                         "ED: 1", "ES: 12", Group, Height, NbFrame, Weight
        patientXXX_4d.nii.gz             the whole cine sequence (not used)
        patientXXX_frameYY.nii.gz        the end-diastolic (ED) and end-systolic (ES) frames
        patientXXX_frameYY_gt.nii.gz     their labels: 0 background, 1 RV, 2 MYO, 3 LV

Cases are frames, named ``patientXXX_frameYY``: the two frames of a patient that have a
``_gt`` file. When ``Info.cfg`` is present its ED and ES frames must both be there (any other
frame file is skipped with a warning).

Each frame: the NIfTI voxel array (x, y, z) is transposed to (D, H, W) = (z, y, x), without
reorientation by the affine, and spacing (z, y, x) comes from the header zooms; the image is
z-scored per volume, ``(v - mean) / max(std, 1e-8)`` (nnU-Net's MR normalisation, ``meta.json``
``intensity: 'zscore'``); labels must be 0-3. ``--target-spacing`` resamples as nnU-Net does
(``auto``: nnU-Net's target spacing of the training frames), after the z-score; the
validation and test volumes then keep ``native_label``, ``native_spacing`` and
``native_shape`` for evaluation on the original grid.

Split (the official MaskSAM code): validation patients :data:`VAL_PATIENTS` (10), test
patients :data:`TEST_PATIENTS` (20), training the other 70: 140 / 20 / 40 volumes. Training
frames go to ``train_volumes/`` (``splits/train_volumes.txt``), validation and test frames to
``test_volumes/`` (``splits/val.txt``, ``splits/test.txt``). Missing patients are reported in
a warning.

Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once complete
(``meta.json`` last), so a failed run leaves nothing at ``DST``.
"""
import os
import os.path as osp
import re
import warnings
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from mmsam.datasets.acdc_volume_dataset import CLASSES, PALETTE
from mmsam.datasets.converters.case_volumes import nifti_target_spacing, resample_case
from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters.nifti_pairs import check_label_ids, read_nifti_pair
from mmsam.datasets.converters.nnunet_preprocessing import parse_target_spacing
from mmsam.datasets.converters.output_folders import check_folders
from mmsam.datasets.io.data_root import TEST_VOLUME_DIR, TRAIN_VOLUME_DIR, write_meta, write_split
from mmsam.datasets.io.npz import save_case_volume
from mmsam.utils.io import staged_output

CONVERTER_NAME = 'ACDCConverter'
CONVERTER_VERSION = 1

ALL_PATIENTS = tuple(range(1, 101))
VAL_PATIENTS = (89, 90, 91, 93, 94, 96, 97, 98, 99, 100)
TEST_PATIENTS = (2, 3, 8, 9, 12, 14, 17, 24, 42, 48, 49, 53, 55, 64, 67, 79, 81, 88, 92, 95)
TRAIN_PATIENTS = tuple(p for p in ALL_PATIENTS if p not in VAL_PATIENTS + TEST_PATIENTS)

_PATIENT_RE = re.compile(r'^patient(\d{3})$')
_FRAME_RE = re.compile(r'^(patient\d{3}_frame\d{2})(\.nii(?:\.gz)?)$')


class ACDCConversionError(ConversionError):
    """An ACDC source file or argument that the conversion cannot use."""


def split_of(patient: int) -> str:
    """Split of a patient number: ``'train'``, ``'val'`` or ``'test'``."""
    return 'val' if patient in VAL_PATIENTS else 'test' if patient in TEST_PATIENTS else 'train'


def zscore(volume: np.ndarray) -> np.ndarray:
    """Z-score a volume by its own mean and standard deviation (nnU-Net's ZScoreNormalization).

    Args:
        volume (ndarray): (D, H, W) intensities.

    Returns:
        ndarray: (D, H, W) float32.
    """
    volume = np.asarray(volume, dtype=np.float64)
    return ((volume - volume.mean()) / max(volume.std(), 1e-8)).astype(np.float32)


def read_info(path: str) -> dict:
    """Read a patient's ``Info.cfg`` (``key: value`` lines) into a dict of strings."""
    info = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.partition(':')
            if sep:
                info[key.strip()] = value.strip()
    return info


def patient_frames(folder: str, patient: int) -> dict:
    """The labelled frames of one patient folder.

    Args:
        folder (str): ``.../patientXXX``.
        patient (int): the patient number.

    Returns:
        dict[str, tuple[str, str, str | None]]: case name -> (image, label, phase 'ED'/'ES' or
        None without ``Info.cfg``), in frame order.
    """
    images = {}
    for name in sorted(os.listdir(folder)):
        match = _FRAME_RE.match(name)
        if match:
            images[match.group(1)] = (osp.join(folder, name), match.group(2))
    phases = {}
    info_path = osp.join(folder, 'Info.cfg')
    if osp.isfile(info_path):
        info = read_info(info_path)
        try:
            phases = {f'patient{patient:03d}_frame{int(info[k]):02d}': k for k in ('ED', 'ES')}
        except (KeyError, ValueError) as err:
            raise ACDCConversionError(f'{info_path} does not give integer "ED:" and "ES:" frames '
                                      f'({err!r}); re-extract the release') from err
        for case in phases:
            if case not in images:
                raise ACDCConversionError(
                    f'{osp.join(folder, case)}.nii.gz does not exist, but {info_path} lists it '
                    'as the ED or ES frame; re-extract the release')
        skipped = sorted(set(images) - set(phases))
        if skipped:
            warnings.warn(f'{folder}: frame file(s) {skipped} are neither ED nor ES in '
                          f'{info_path}; skipped')
    if not images:
        raise ACDCConversionError(f'{folder} has no patientXXX_frameYY.nii.gz file; re-extract '
                                  'the release')
    frames = {}
    for case, (path, ext) in images.items():
        if phases and case not in phases:
            continue
        frames[case] = (path, osp.join(folder, f'{case}_gt{ext}'), phases.get(case))
    return frames


def find_cases(src: str) -> Tuple[str, dict, List[int]]:
    """Find the labelled frames under ``src``.

    Returns:
        tuple[str, dict[str, dict], list[int]]: the training folder, case name ->
        dict(image, label, phase, patient, split) in patient then frame order, and the missing
        patient numbers.
    """
    base = osp.join(src, 'training') if osp.isdir(osp.join(src, 'training')) else src
    patients = {}
    for name in sorted(os.listdir(base)):
        match = _PATIENT_RE.match(name)
        if match and osp.isdir(osp.join(base, name)):
            number = int(match.group(1))
            if number not in ALL_PATIENTS:
                warnings.warn(f'{osp.join(base, name)} is not one of the 100 labelled training '
                              'patients; skipped')
                continue
            patients[number] = osp.join(base, name)
    if not patients:
        raise ACDCConversionError(f'{base} holds no patientXXX folder: SRC must be the ACDC '
                                  'release (training/patient001/...) or its training/ folder')
    cases = {}
    for number, folder in patients.items():
        for case, (image, label, phase) in patient_frames(folder, number).items():
            cases[case] = dict(image=image, label=label, phase=phase, patient=number,
                               split=split_of(number))
    missing = [p for p in ALL_PATIENTS if p not in patients]
    if missing:
        warnings.warn(f'ACDC source {base} lacks {len(missing)} of the 100 training patients '
                      f'({missing}); converting the {len(patients)} present')
    if not any(c['split'] == 'train' for c in cases.values()):
        raise ACDCConversionError(f'{base} has no training patient (all present patients are in '
                                  'the validation or test split); nothing to train on')
    return base, cases, missing


def convert_acdc(src: str, dst: str, target_spacing: Union[None, str, Sequence[float]] = None,
                 overwrite: bool = False, log: Optional[Callable[[str], None]] = None) -> dict:
    """Convert the ACDC training release at ``src`` into mmsam's volume format at ``dst``.

    Args:
        src (str): the ACDC release (or its ``training/`` folder).
        dst (str): output data root (see the package docstring).
        target_spacing: resampling target, as ``parse_target_spacing`` reads it.
        overwrite (bool), log (callable | None): see the package docstring.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=ACDCConversionError)
    target_spacing = parse_target_spacing(target_spacing, ACDCConversionError)
    base, cases, missing = find_cases(src)
    splits = {k: [c for c, v in cases.items() if v['split'] == k] for k in ('train', 'val', 'test')}
    if target_spacing == 'auto':
        target_spacing = nifti_target_spacing((cases[c]['image'] for c in splits['train']),
                                              ACDCConversionError)

    with staged_output(dst) as tmp:
        for i, (case, info) in enumerate(cases.items(), 1):
            log(f'[{i}/{len(cases)}] {case} ({info["split"]})')
            data = read_nifti_pair(info['image'], info['label'], ACDCConversionError, min_depth=2)
            label = check_label_ids(data['label'], len(CLASSES), info['label'],
                                    ACDCConversionError)
            image, label, spacing, native = resample_case(
                zscore(data['image']), label, data['spacing'], target_spacing,
                keep_native=info['split'] != 'train')
            folder = TRAIN_VOLUME_DIR if info['split'] == 'train' else TEST_VOLUME_DIR
            save_case_volume(osp.join(tmp, folder, f'{case}.npz'), image, label, spacing, native)
        write_split(tmp, 'train_volumes', splits['train'])
        write_split(tmp, 'val', splits['val'])
        write_split(tmp, 'test', splits['test'])
        meta = dict(
            classes=list(CLASSES), palette=PALETTE, intensity='zscore', ct_foreground=None,
            target_spacing=None if target_spacing is None else list(target_spacing),
            spacing_note='(z, y, x) mm from the NIfTI headers; volumes (D, H, W) are the stored '
                         'voxel arrays (x, y, z) transposed to (z, y, x), without reorientation',
            source=dict(path=base),
            split_patients=dict(train=list(TRAIN_PATIENTS), val=list(VAL_PATIENTS),
                                test=list(TEST_PATIENTS)),
            num_volumes={k: len(v) for k, v in splits.items()}, missing_patients=missing,
            phases={c: v['phase'] for c, v in cases.items() if v['phase']},
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: ' + ', '.join(f'{len(v)} {k}' for k, v in splits.items()) + ' volumes')
    return meta

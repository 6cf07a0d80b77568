"""Convert the Synapse multi-organ CT data (MICCAI 2015 BTCV) into mmsam's slice/volume format.

The command line is ``tools/dataset_converters/synapse.py``. The sources are read by
:mod:`.synapse_transunet` (TransUNet's release) and :mod:`.synapse_btcv` (raw BTCV); raw HU and
resampling for 3D methods are :mod:`.synapse_volumes`; this module checks the cases against
TransUNet's split, chooses the few-shot slices and writes the data root.

Two sources are understood:

* ``transunet``: TransUNet's preprocessed release, ``SRC/train_npz/caseXXXX_sliceYYY.npz``
  (``image``, ``label``: (H, W), image already in [0, 1]) and ``SRC/test_vol_h5/caseXXXX.npy.h5``
  (datasets ``image``, ``label``: (D, H, W)), optionally with
  ``SRC/lists/lists_Synapse/{train.txt,test_vol.txt}``; when a list exists it is authoritative
  (every listed item must exist; unlisted files are skipped with a warning). Arrays are copied
  as they are. The release carries no voxel spacing: test volumes get spacing (1, 1, 1), i.e.
  HD95 in voxels, which is how TransUNet evaluates.
* ``btcv``: the raw release, ``SRC/img/img00XX.nii.gz`` and ``SRC/label/label00XX.nii.gz``
  (``SRC`` may also be the folder holding ``Training/`` or ``RawData/Training/``). Each case is
  processed the way TransUNet's release was made: HU clipped to :data:`HU_WINDOW` and rescaled
  linearly to [0, 1]; the stored voxel array (i, j, k) transposed to (k, j, i) = (D, H, W), so
  axial slices run along the first axis; no reorientation by the affine, so the slices match
  the release's slice for slice and pixel for pixel (each case's axis codes, from its affine,
  are recorded in ``meta.json`` under ``source_axcodes``); labels mapped with
  :data:`mmsam.datasets.synapse_dataset.BTCV_TO_SYNAPSE` (the 8 evaluated organs, every other
  raw id to background); spacing (z, y, x) from the NIfTI header's zooms (k, j, i).

Cases follow TransUNet's split: :data:`TEST_CASES` (12) are written as volumes, the other 18 of
the 30 labelled BTCV cases as 2D slices (all of each case's slices). Whichever of the 30 cases
are present are converted; missing ones are reported in a warning.

Few-shot split (``splits/train_10pct.txt``): by default on the command line, H-SAM's published
221-slice list (the official ``lists/lists_Synapse/train_220.txt``, shipped as
``mmsam/datasets/splits/hsam/synapse_train_220.txt``, :data:`HSAM_SYNAPSE_10PCT`), so
the 10% results use the paper's slices. ``--few-shot-fraction`` or ``--seed`` asks for a seeded
draw instead (the Python function ``convert_synapse`` draws unless given ``few_shot_list``).
H-SAM (supplementary A) selects "10% training data, i.e. 221 slices, randomly from different
subjects in the training volumes", a slice-based selection; the "1 volume" of the main text is
the amount of data (221 slices is about one volume), not a whole-case selection. The seeded draw
is a random sample of slices stratified by case: ``round(fraction * N)`` slices in all, each case
getting its proportional share (largest remainders first) and taking the first slices of a
permutation seeded with ``(seed, case name)``, so a case's draw does not depend on which other
cases are present beyond its share. ``--few-shot-list`` uses a published list instead (one slice
name per line, e.g. ``case0005_slice042``; every name must be a training slice).

Volumetric (3D) options:

* ``--train-volumes`` also writes the training cases as volumes to ``train_volumes/``, listed
  in ``splits/train_volumes.txt`` (the TransUNet release: its slices stacked, spacing 1).
* ``--intensity window`` (default) stores TransUNet's windowed [0, 1] intensities (``meta.json``
  ``intensity: 'unit'``); ``--intensity hu`` (btcv only) keeps raw HU as float32
  (``intensity: 'hu'``) and records nnU-Net's CT statistics of the training cases' labelled
  voxels in ``ct_foreground`` (``mean``, ``std``, ``percentile_00_5``, ``percentile_99_5``).
* ``--target-spacing auto`` (btcv only) resamples every case to nnU-Net's target spacing of the
  training cases (median, 10th percentile along an anisotropic z), ``Z,Y,X`` to a given one,
  with :func:`mmsam.datasets.converters.nnunet_preprocessing.resample_volume`; training slices
  are cut from the
  resampled volumes, and test volumes keep ``native_label``, ``native_spacing`` and
  ``native_shape`` for evaluation on the original grid. ``meta.json`` records
  ``target_spacing`` (null without resampling). TransUNet's release has no spacing and cannot
  be resampled.

Output goes to a temporary folder next to ``DST`` that is renamed to ``DST`` once complete
(``meta.json`` is written last), so a failed run leaves no ``DST`` behind.
"""
import os.path as osp
import warnings
import zlib
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from mmsam.datasets.io.data_root import write_meta, write_split
from mmsam.datasets.splits import HSAM_SYNAPSE_10PCT
from mmsam.datasets.synapse_dataset import CLASSES, PALETTE
from mmsam.utils.io import staged_output

from .nnunet_preprocessing import foreground_stats, parse_target_spacing
from .output_folders import check_folders
from .slice_lists import read_slice_list
from .synapse_btcv import BTCVSource
from .synapse_common import (ALL_CASES, CONVERTER_NAME, CONVERTER_VERSION, INTENSITY_MODES,
                             SynapseConversionError, TEST_CASES, TRAIN_CASES, abbreviate)
from .synapse_transunet import TransUNetSource

SOURCES = dict(transunet=TransUNetSource, btcv=BTCVSource)


def detect_format(src: str) -> str:
    """Guess the source layout of ``src``: ``'transunet'`` or ``'btcv'``."""
    if osp.isdir(osp.join(src, 'train_npz')) or osp.isdir(osp.join(src, 'test_vol_h5')):
        return 'transunet'
    if any(osp.isdir(osp.join(src, sub, 'img'))
           for sub in ('', 'Training', osp.join('RawData', 'Training'))):
        return 'btcv'
    raise SynapseConversionError(
        f'{src} holds neither TransUNet\'s release (train_npz/, test_vol_h5/) nor the raw BTCV '
        'data (img/, label/); check the path')


def check_cases(train_cases: Sequence[str], test_cases: Sequence[str], src: str) -> List[str]:
    """Check the cases against TransUNet's split; warn about the expected ones that are missing.

    Args:
        train_cases (list[str]): cases found for training.
        test_cases (list[str]): cases found for testing.
        src (str): source folder, named in messages.

    Returns:
        list[str]: the expected cases that are missing.
    """
    unknown = sorted(c for c in set(train_cases) | set(test_cases) if c not in ALL_CASES)
    if unknown:
        raise SynapseConversionError(
            f'{src} has case(s) {unknown} that are not among the 30 labelled BTCV cases '
            f'(case0001-0010, case0021-0040) of the TransUNet split; remove them from the source')
    leaked = sorted(c for c in train_cases if c in TEST_CASES)
    wrong = sorted(c for c in test_cases if c not in TEST_CASES)
    if leaked or wrong:
        raise SynapseConversionError(
            f'{src} does not follow the TransUNet split (test cases {list(TEST_CASES)}): '
            f'test case(s) {leaked} among the training slices, training case(s) {wrong} among '
            'the test volumes; use the unmodified release')
    if not train_cases or not test_cases:
        raise SynapseConversionError(
            f'{src} has {len(train_cases)} training and {len(test_cases)} test case(s); at least '
            'one of each is needed')
    missing = [c for c in ALL_CASES if c not in train_cases and c not in test_cases]
    if missing:
        train_missing = [c for c in missing if c in TRAIN_CASES]
        test_missing = [c for c in missing if c in TEST_CASES]
        warnings.warn(f'Synapse source {src} lacks {len(missing)} of the 30 cases (training: '
                      f'{train_missing or "none"}; test: {test_missing or "none"}); converting the '
                      f'{30 - len(missing)} present')
    return missing


def few_shot_split_name(fraction: float) -> str:
    """Name of the few-shot split file for ``fraction``, e.g. 0.1 -> ``'train_10pct'``."""
    return f'train_{round(fraction * 100, 6):g}pct'


def sample_few_shot(train_slices: Dict[str, List[str]], fraction: float = 0.1, seed: int = 0
                   ) -> List[str]:
    """Draw a seeded random subset of training slices, stratified by case.

    ``n = round(fraction * N)`` slices of the ``N`` in all (at least 1); case ``c`` with ``N_c``
    slices gets ``floor(n * N_c / N)`` of them, and the remaining ones go to the cases with the
    largest fractional parts (ties: case order). A case's slices are the first ``k`` of a
    permutation drawn by a generator seeded with ``(seed, crc32(case))``, so other cases only
    matter through the quota ``k``.

    Args:
        train_slices (dict[str, list[str]]): case -> its slice names.
        fraction (float): share of the slices to keep, in (0, 1].
        seed (int): seed of the draw.

    Returns:
        list[str]: the selected slice names, in case then slice order.
    """
    if not 0 < fraction <= 1:
        raise SynapseConversionError(f'few-shot fraction {fraction} must be in (0, 1]')
    cases = list(train_slices)
    counts = np.array([len(train_slices[c]) for c in cases], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return []
    n = min(total, max(1, int(np.floor(fraction * total + 0.5))))
    exact = counts * n / total
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind='stable')
    quota[order[:n - int(quota.sum())]] += 1
    selected = []
    for case, k in zip(cases, quota):
        names = train_slices[case]
        order = np.random.default_rng([seed, zlib.crc32(case.encode())]).permutation(len(names))
        selected += [names[i] for i in sorted(order[:k])]
    return selected


def read_few_shot_list(path: str, train_slices: Dict[str, List[str]]) -> List[str]:
    """Read a few-shot slice list (:func:`.slice_lists.read_slice_list`), all training slices.

    Args:
        path (str): the list file.
        train_slices (dict[str, list[str]]): case -> its slice names (what will be written).

    Returns:
        list[str]: the listed slice names, in file order.
    """
    names, _ = read_slice_list(path, SynapseConversionError)
    available = {s for stems in train_slices.values() for s in stems}
    missing = [n for n in names if n not in available]
    if missing:
        raise SynapseConversionError(
            f'the few-shot list {path} names {len(missing)} slice(s) that are not training slices '
            f'of the source: {abbreviate(missing)}. Entries must be <case>_slice<NNN> of the '
            f'training cases present ({abbreviate(train_slices, 30)}); test cases '
            f'{list(TEST_CASES)} are never training slices')
    return names


def convert_synapse(src: str, dst: str, fmt: str = 'auto', few_shot_fraction: Optional[float] = 0.1,
                    seed: int = 0, few_shot_list: Optional[str] = None,
                    few_shot_name: Optional[str] = None, overwrite: bool = False,
                    log: Optional[Callable[[str], None]] = None, train_volumes: bool = False,
                    intensity: str = 'window',
                    target_spacing: Union[None, str, Sequence[float]] = None) -> dict:
    """Convert a Synapse source (TransUNet's release or raw BTCV) into mmsam's format at ``dst``.

    Writes ``train_slices/``, ``test_volumes/``, ``splits/{train,test}.txt``, the few-shot split,
    with ``train_volumes`` also ``train_volumes/`` and ``splits/train_volumes.txt``, and
    ``meta.json`` (see :mod:`mmsam.datasets.io.data_root`) into a temporary folder next to
    ``dst``, then renames it to ``dst``; on any error nothing is left at ``dst``.

    Args:
        src (str): source folder.
        dst (str): output data root (see the package docstring).
        fmt (str): ``'transunet'``, ``'btcv'`` or ``'auto'`` (detected from the folders).
        few_shot_fraction (float | None): share of training slices in the few-shot split;
            0 or None writes none (unless ``few_shot_list`` is given).
        seed (int): seed of the few-shot draw.
        few_shot_list (str | None): file of slice names used as the few-shot split instead of a
            draw; ``'hsam'`` for H-SAM's published list (the command line's default), which
            needs all 18 training cases (with fewer, a warning and a draw).
        few_shot_name (str | None): few-shot split name; default from the fraction
            (0.1 -> ``train_10pct``).
        overwrite (bool): replace a previous output of this converter at ``dst``.
        log (callable | None): called with progress messages.
        train_volumes (bool): also write the training cases to ``train_volumes/``.
        intensity (str): ``'window'`` (TransUNet's [0, 1]) or ``'hu'`` (raw HU, btcv only).
        target_spacing (None | str | sequence[float]): None/``'none'``, ``'auto'`` or
            (z, y, x) mm to resample to (btcv only).

    Returns:
        dict: the contents of ``meta.json``.
    """
    log = log or (lambda msg: None)
    src, dst = check_folders(src, dst, CONVERTER_NAME, overwrite, error=SynapseConversionError)
    fmt = detect_format(src) if fmt == 'auto' else fmt
    if fmt not in SOURCES:
        raise SynapseConversionError(f'unknown format {fmt!r}; use one of {sorted(SOURCES)}')

    if intensity not in INTENSITY_MODES:
        raise SynapseConversionError(f'unknown intensity mode {intensity!r}; use one of '
                                     f'{list(INTENSITY_MODES)}')
    target_spacing = parse_target_spacing(target_spacing, SynapseConversionError)

    source = SOURCES[fmt](src)
    target_spacing = source.configure(intensity, target_spacing)
    train_cases, test_cases = list(source.train_slices), list(source.test_cases)
    missing = check_cases(train_cases, test_cases, src)
    train_names = [s for c in train_cases for s in source.train_slices[c]]
    few_shot = None
    if few_shot_list == 'hsam':
        absent = sorted(c for c in ALL_CASES if c not in TEST_CASES and c not in train_cases)
        if absent:
            warnings.warn(f'{src} lacks training case(s) {absent}, so H-SAM\'s published '
                          f'10% list cannot be used; drawing {few_shot_fraction or 0.1} of the '
                          f'slices with seed {seed} instead')
            few_shot_list, few_shot_fraction = None, few_shot_fraction or 0.1
        else:
            few_shot_list = HSAM_SYNAPSE_10PCT
    if few_shot_list is not None:
        name = few_shot_name or few_shot_split_name(few_shot_fraction or 0.1)
        few_shot = dict(split=name, names=read_few_shot_list(few_shot_list, source.train_slices),
                        source=f'list {osp.abspath(few_shot_list)}')
    elif few_shot_fraction:
        name = few_shot_name or few_shot_split_name(few_shot_fraction)
        few_shot = dict(split=name,
                        names=sample_few_shot(source.train_slices, few_shot_fraction, seed),
                        source='random slices stratified by case', fraction=few_shot_fraction,
                        seed=seed)
    if few_shot is not None and few_shot['split'] in ('train', 'test'):
        raise SynapseConversionError(f'few-shot split name {few_shot["split"]!r} would replace '
                                     'the full split; choose another --few-shot-name')

    with staged_output(dst) as tmp:
        for i, case in enumerate(train_cases, 1):
            log(f'[train {i}/{len(train_cases)}] {case}: {len(source.train_slices[case])} slices')
            source.write_train_case(case, tmp, volume=train_volumes)
        for i, case in enumerate(test_cases, 1):
            log(f'[test {i}/{len(test_cases)}] {case}: volume')
            source.write_test_case(case, tmp)
        write_split(tmp, 'train', train_names)
        write_split(tmp, 'test', test_cases)
        if train_volumes:
            write_split(tmp, 'train_volumes', train_cases)
        ct_foreground = None
        if intensity == 'hu':
            ct_foreground = foreground_stats(source.fg_samples, f'the training cases of {src}',
                                             SynapseConversionError)
        if few_shot is not None:
            write_split(tmp, few_shot['split'], few_shot['names'])
        meta = dict(
            classes=list(CLASSES), palette=[list(c) for c in PALETTE],
            **source.meta(),
            source=dict(format=fmt, path=src),
            train_cases=train_cases, test_cases=test_cases, missing_cases=missing,
            num_train_slices=len(train_names),
            intensity='hu' if intensity == 'hu' else 'unit', ct_foreground=ct_foreground,
            target_spacing=None if target_spacing is None else list(target_spacing),
            train_volumes=bool(train_volumes),
            few_shot=None if few_shot is None else dict(
                {k: v for k, v in few_shot.items() if k != 'names'},
                num_slices=len(few_shot['names'])),
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: {len(train_names)} training slices of {len(train_cases)} cases, '
        f'{len(test_cases)} test volumes'
        + ('' if few_shot is None else
           f', few-shot split {few_shot["split"]} of {len(few_shot["names"])} slices'))
    return meta

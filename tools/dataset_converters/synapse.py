"""Convert the Synapse multi-organ CT data (MICCAI 2015 BTCV) into mmsam's slice/volume format.

    python tools/dataset_converters/synapse.py SRC DST [--format auto|transunet|btcv]
        [--few-shot-fraction 0.1] [--seed 0] [--few-shot-list FILE] [--few-shot-name NAME]
        [--train-volumes] [--intensity window|hu] [--target-spacing none|auto|Z,Y,X]
        [--overwrite]

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
``tools/dataset_converters/splits/hsam/synapse_train_220.txt``, :data:`HSAM_SYNAPSE_10PCT`), so
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
import argparse
import os
import os.path as osp
import re
import sys
import warnings
import zipfile
import zlib

import numpy as np

# Running `python tools/dataset_converters/synapse.py` puts this folder (not the repository) on
# sys.path; the repository root goes first so this checkout's mmsam is used.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmsam.datasets.converter_utils import (  # noqa: E402
    ConversionError, check_folders, check_label_ids, read_name_list, run_conversion,
    save_case_volume, slice_names, staged_output)
from mmsam.datasets.converters.nnunet_preprocessing import (  # noqa: E402
    FOREGROUND_SAMPLE_BUDGET, foreground_stats, nnunet_target_spacing, parse_target_spacing,
    resample_volume, resampled_shape, sample_foreground)
from mmsam.datasets.slice_selection import HSAM_SYNAPSE_10PCT  # noqa: E402
from mmsam.utils.limits import check_voxel_limit  # noqa: E402
from mmsam.datasets.synapse_dataset import (BTCV_TO_SYNAPSE, CLASSES,  # noqa: E402
                                            PALETTE)
from mmsam.datasets.volume_io import (TEST_VOLUME_DIR, TRAIN_SLICE_DIR,  # noqa: E402
                                      TRAIN_VOLUME_DIR, save_slice, save_volume, write_meta,
                                      write_split)

CONVERTER_NAME = 'SynapseConverter'
CONVERTER_VERSION = 2

# The 30 labelled BTCV cases (img0001-0010, img0021-0040) and TransUNet's 12 test cases.
ALL_CASES = tuple(f'case{n:04d}' for n in (*range(1, 11), *range(21, 41)))
TEST_CASES = tuple(f'case{n:04d}' for n in (1, 2, 3, 4, 8, 22, 25, 29, 32, 35, 36, 38))
TRAIN_CASES = tuple(c for c in ALL_CASES if c not in TEST_CASES)

HU_WINDOW = (-125.0, 275.0)
NUM_CLASSES = len(CLASSES)
NUM_BTCV_IDS = 14  # raw BTCV labels: background + 13 organs
INTENSITY_MODES = ('window', 'hu')

_SLICE_RE = re.compile(r'^(case\d{4})_slice(\d+)$')


class SynapseConversionError(ConversionError):
    """A Synapse source file or argument that the conversion cannot use."""


# ---------------------------------------------------------------------------------------------
# array helpers


def window_hu(hu, window=HU_WINDOW):
    """Clip CT intensities to a HU window and rescale it linearly to [0, 1].

    Args:
        hu (ndarray): (...) intensities in Hounsfield units.
        window (tuple[float, float]): (low, high) HU mapped to 0 and 1.

    Returns:
        ndarray: (...) float32 in [0, 1].
    """
    low, high = window
    hu = np.clip(np.asarray(hu, dtype=np.float32), low, high)
    return ((hu - np.float32(low)) / np.float32(high - low)).astype(np.float32)


def _integer_labels(label, path, max_id=None):
    """Check that ``label`` holds non-negative integer ids (<= ``max_id``); return them as int64."""
    label = np.asarray(label)
    if label.size and not np.all(np.isfinite(label)):
        raise SynapseConversionError(f'{path}: label contains NaN/inf; the file is damaged, '
                                     're-download it')
    ids = np.rint(label).astype(np.int64)
    if label.size and (not np.array_equal(ids, label) or ids.min() < 0):
        raise SynapseConversionError(f'{path}: label values must be non-negative integer ids, got '
                                     f'values in [{label.min()}, {label.max()}]; is this a label '
                                     'file of the release?')
    if max_id is not None and label.size and ids.max() > max_id:
        raise SynapseConversionError(
            f'{path}: label id {ids.max()} > {max_id}; TransUNet\'s release has ids 0-{max_id} '
            f'only. For the raw BTCV labels (ids 0-13) use --format btcv')
    return ids


def map_btcv_labels(raw, path='label'):
    """Map raw BTCV label ids to Synapse ids: the 8 evaluated organs, everything else 0.

    Args:
        raw (ndarray): (...) raw BTCV ids (integer-valued, any dtype).
        path (str): source file, named in errors.

    Returns:
        ndarray: (...) uint8 ids into :data:`CLASSES`.
    """
    raw = _integer_labels(raw, path)
    lut = np.zeros(max(int(raw.max(initial=0)), max(BTCV_TO_SYNAPSE)) + 1, dtype=np.uint8)
    for raw_id, new_id in BTCV_TO_SYNAPSE.items():
        lut[raw_id] = new_id
    return lut[raw]


def to_dhw(array):
    """Reorder a NIfTI voxel array (i, j, k) to (k, j, i) = (D, H, W), as TransUNet's release.

    Args:
        array (ndarray): (I, J, K) array as stored in the NIfTI file.

    Returns:
        ndarray: (K, J, I) contiguous array; ``out[k] = array[:, :, k].T``.
    """
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def _check_release_pair(image, label, ndim, path):
    if image.ndim != ndim or label.shape != image.shape:
        raise SynapseConversionError(
            f'{path}: expected image and label of one {ndim}-D shape, got image {image.shape} '
            f'and label {label.shape}; the file is not from TransUNet\'s release or is damaged')
    if image.size and not np.all(np.isfinite(image)):
        raise SynapseConversionError(f'{path}: image contains NaN/inf; re-download the file')
    if image.size and (image.min() < -1e-4 or image.max() > 1 + 1e-4):
        raise SynapseConversionError(
            f'{path}: image values span [{image.min():.4g}, {image.max():.4g}], not [0, 1]; '
            'TransUNet\'s release is already windowed and rescaled. For raw HU use --format btcv')
    return np.clip(image, 0, 1).astype(np.float32), \
        _integer_labels(label, path, max_id=NUM_CLASSES - 1).astype(np.uint8)


def _read_npz(path):
    if osp.isfile(path) and not zipfile.is_zipfile(path):
        raise SynapseConversionError(f'cannot read {path}: it is not an .npz (zip) archive; the '
                                     'file is damaged: re-download or re-extract it')
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ('image', 'label') if k not in npz.files]
            if missing:
                raise SynapseConversionError(
                    f'{path} lacks key(s) {missing} (it has {npz.files}); TransUNet\'s slices '
                    'hold "image" and "label": re-download or re-extract the release')
            return npz['image'], npz['label']
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise SynapseConversionError(f'cannot read {path} ({type(err).__name__}: {err}); the file '
                                     'is damaged or not an .npz: re-download or re-extract '
                                     'it') from err


def _read_h5(path):
    import h5py
    try:
        with h5py.File(path, 'r') as f:
            missing = [k for k in ('image', 'label') if k not in f]
            if missing:
                raise SynapseConversionError(
                    f'{path} lacks dataset(s) {missing} (it has {sorted(f.keys())}); '
                    'TransUNet\'s test volumes hold "image" and "label": re-download the release')
            for key in ('image', 'label'):
                check_voxel_limit(f[key].shape, f'{path}:{key}', error=SynapseConversionError)
            return f['image'][()], f['label'][()]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SynapseConversionError(f'cannot read {path} ({type(err).__name__}: {err}); the file '
                                     'is damaged or not HDF5: re-download or re-extract '
                                     'it') from err


def _load_nifti(path):
    import nibabel as nib
    try:
        return nib.load(path)
    except Exception as err:  # nibabel raises many types (ImageFileError, OSError, ...)
        raise SynapseConversionError(f'cannot read {path} ({type(err).__name__}: {err}); the file '
                                     'is damaged or not NIfTI: re-download or re-extract '
                                     'it') from err


def _nifti_data(img, path):
    check_voxel_limit(img.shape, path, error=SynapseConversionError)  # before any voxel is read
    try:
        return img.get_fdata(dtype=np.float32)
    except Exception as err:  # truncated gzip: EOFError, zlib.error, OSError, ValueError
        raise SynapseConversionError(f'cannot read the voxels of {path} ({type(err).__name__}: '
                                     f'{err}); the file is damaged: re-download or re-extract '
                                     'it') from err


# ---------------------------------------------------------------------------------------------
# sources


class TransUNetSource:
    """TransUNet's preprocessed release: training slices (npz) and test volumes (h5).

    Args:
        src (str): release folder holding ``train_npz/`` and ``test_vol_h5/``.

    Attributes:
        train_slices (dict[str, list[str]]): case -> slice names (file stems), in slice order.
        test_cases (list[str]): case names of the test volumes.
    """

    format = 'transunet'

    def __init__(self, src):
        self.src = src
        self.npz_dir = osp.join(src, 'train_npz')
        self.h5_dir = osp.join(src, 'test_vol_h5')
        for folder in (self.npz_dir, self.h5_dir):
            if not osp.isdir(folder):
                raise SynapseConversionError(
                    f'{folder} does not exist: {src} is not TransUNet\'s preprocessed release '
                    '(train_npz/ and test_vol_h5/). For the raw BTCV data (img/, label/) use '
                    '--format btcv')
        list_dir = osp.join(src, 'lists', 'lists_Synapse')
        stems = self._listed(self.npz_dir, '.npz', osp.join(list_dir, 'train.txt'))
        cases = self._listed(self.h5_dir, '.npy.h5', osp.join(list_dir, 'test_vol.txt'))
        self.train_slices = {}
        for stem in stems:
            match = _SLICE_RE.match(stem)
            if match is None:
                warnings.warn(f'{osp.join(self.npz_dir, stem)}.npz is not named '
                              'caseXXXX_sliceYYY.npz; skipped')
                continue
            self.train_slices.setdefault(match.group(1), []).append(stem)
        for case, names in self.train_slices.items():
            names.sort(key=lambda s: int(_SLICE_RE.match(s).group(2)))
        self.train_slices = dict(sorted(self.train_slices.items()))
        self.test_cases = sorted(cases)

    @staticmethod
    def _listed(folder, suffix, list_file):
        """Item names in ``folder`` (files ending in ``suffix``), restricted to ``list_file``."""
        present = sorted(f[:-len(suffix)] for f in os.listdir(folder) if f.endswith(suffix))
        if not osp.isfile(list_file):
            return present
        with open(list_file) as f:
            listed = [osp.basename(line.strip()) for line in f if line.strip()]
        listed = [name[:-len(suffix)] if name.endswith(suffix) else name for name in listed]
        missing = sorted(set(listed) - set(present))
        if missing:
            raise SynapseConversionError(
                f'{list_file} lists {len(missing)} item(s) missing from {folder}: '
                f'{_abbrev(missing)}; the release is incomplete: re-extract it, or delete the '
                'list to convert the files that are present')
        unlisted = sorted(set(present) - set(listed))
        if unlisted:
            warnings.warn(f'{len(unlisted)} file(s) in {folder} are not in {list_file} and are '
                          f'skipped: {_abbrev(unlisted)}')
        return sorted(set(listed))

    def configure(self, intensity='window', target_spacing=None):
        """Check the intensity mode and target spacing; the release allows neither change."""
        if intensity != 'window':
            raise SynapseConversionError(
                f'--intensity {intensity}: TransUNet\'s release {self.src} is already windowed '
                f'to {list(HU_WINDOW)} HU and rescaled to [0, 1], so raw HU are lost; use the raw '
                'BTCV data (--format btcv) or --intensity window')
        if target_spacing is not None:
            raise SynapseConversionError(
                f'--target-spacing {target_spacing}: TransUNet\'s release {self.src} stores no '
                'voxel spacing (every volume is taken as spacing 1, 1, 1), so it cannot be '
                'resampled; use the raw BTCV data (--format btcv) or --target-spacing none')
        return None

    def write_train_case(self, case, root, volume=False):
        """Copy the case's slices to ``root/train_slices/`` (stacked to a volume if asked)."""
        images, labels = [], []
        for stem in self.train_slices[case]:
            path = osp.join(self.npz_dir, f'{stem}.npz')
            image, label = _check_release_pair(*_read_npz(path), 2, path)
            save_slice(osp.join(root, TRAIN_SLICE_DIR, f'{stem}.npz'), image, label)
            if volume:
                images.append(image)
                labels.append(label)
        if volume:
            numbers = [int(_SLICE_RE.match(s).group(2)) for s in self.train_slices[case]]
            if numbers != list(range(len(numbers))) or len({i.shape for i in images}) != 1:
                raise SynapseConversionError(
                    f'{self.npz_dir}: the slices of {case} are not numbered 0-{len(numbers) - 1} '
                    f'with one shape (found numbers {_abbrev(map(str, numbers))}), so they '
                    'cannot be stacked into a training volume; re-extract the release or drop '
                    '--train-volumes')
            save_volume(osp.join(root, TRAIN_VOLUME_DIR, f'{case}.npz'), np.stack(images),
                        np.stack(labels), spacing=(1.0, 1.0, 1.0))

    def write_test_case(self, case, root):
        """Copy the case's volume to ``root/test_volumes/``, with unit spacing (unknown)."""
        path = osp.join(self.h5_dir, f'{case}.npy.h5')
        image, label = _check_release_pair(*_read_h5(path), 3, path)
        save_volume(osp.join(root, TEST_VOLUME_DIR, f'{case}.npz'), image, label,
                    spacing=(1.0, 1.0, 1.0))

    def meta(self):
        return dict(spacing_note='TransUNet\'s release has no voxel spacing: test volumes are '
                                 'stored with spacing (1, 1, 1), so HD95 is in voxels as in '
                                 'TransUNet; axial slices (D, H, W) as in the release',
                    spacing_known=False)


class BTCVSource:
    """The raw BTCV release: NIfTI CT volumes and raw 13-organ labels.

    Args:
        src (str): folder holding ``img/`` and ``label/`` (or ``Training/``, or
            ``RawData/Training/`` with them).

    Attributes:
        train_slices (dict[str, list[str]]): case -> slice names to be written, in slice order.
        test_cases (list[str]): case names to be written as volumes.
    """

    format = 'btcv'
    _IMG_RE = re.compile(r'^img(\d{4})(\.nii(?:\.gz)?)$')

    def __init__(self, src):
        self.src = src
        base = next((osp.join(src, sub) for sub in ('', 'Training', osp.join('RawData', 'Training'))
                     if osp.isdir(osp.join(src, sub, 'img'))), None)
        if base is None:
            raise SynapseConversionError(
                f'{osp.join(src, "img")} does not exist: {src} is not the raw BTCV release '
                '(img/img00XX.nii.gz, label/label00XX.nii.gz). For TransUNet\'s preprocessed '
                'release (train_npz/, test_vol_h5/) use --format transunet')
        self.img_dir, self.label_dir = osp.join(base, 'img'), osp.join(base, 'label')
        self.files = {}
        for name in sorted(os.listdir(self.img_dir)):
            match = self._IMG_RE.match(name)
            if match is None:
                continue
            case = f'case{match.group(1)}'
            label = osp.join(self.label_dir, f'label{match.group(1)}{match.group(2)}')
            if not osp.isfile(label):
                raise SynapseConversionError(
                    f'label file {label} for {osp.join(self.img_dir, name)} does not exist; '
                    're-extract the release (every img00XX needs its label00XX)')
            self.files[case] = (osp.join(self.img_dir, name), label)
        self.test_cases = [c for c in self.files if c in TEST_CASES]
        self.axcodes = {}
        self.intensity, self.target_spacing = 'window', None
        self.fg_samples = []  # labelled-voxel HU of the training cases (intensity 'hu')
        # the headers alone give shapes and spacings, so splits (and the target spacing) are
        # planned before any voxel is read
        self.headers = {}  # training case -> (shape (D, H, W), spacing (z, y, x))
        for case in self.files:
            if case in TEST_CASES:
                continue
            img = _load_nifti(self.files[case][0])
            if len(img.shape) != 3:
                raise SynapseConversionError(f'{self.files[case][0]}: expected a 3D volume, got '
                                             f'shape {img.shape}')
            zooms = [float(z) for z in img.header.get_zooms()[:3]]
            self.headers[case] = (tuple(img.shape[::-1]), tuple(zooms[::-1]))
        self._plan()

    def _plan(self):
        """Name the training slices from each case's (resampled) depth."""
        self.train_slices = {}
        for case, (shape, spacing) in self.headers.items():
            if self.target_spacing is not None:
                shape = resampled_shape(shape, spacing, self.target_spacing)
            self.train_slices[case] = slice_names(case, shape[0])

    def configure(self, intensity='window', target_spacing=None):
        """Set the intensity mode and target spacing (``'auto'``: nnU-Net's, of the training
        cases); re-plans the training slices. Returns the target spacing (z, y, x) or None."""
        if target_spacing == 'auto':
            if not self.headers:
                raise SynapseConversionError(f'{self.img_dir} has no training case to compute '
                                             '--target-spacing auto from')
            shapes, spacings = zip(*self.headers.values())
            target_spacing = nnunet_target_spacing(spacings, shapes)
        self.intensity, self.target_spacing = intensity, target_spacing
        self._plan()
        return target_spacing

    def _read_case(self, case):
        """Raw HU (D, H, W) float32, Synapse label (D, H, W) uint8, spacing (z, y, x)."""
        import nibabel as nib
        img_path, label_path = self.files[case]
        img, lbl = _load_nifti(img_path), _load_nifti(label_path)
        if len(img.shape) != 3 or tuple(lbl.shape) != tuple(img.shape):
            raise SynapseConversionError(
                f'{label_path} has shape {lbl.shape}, {img_path} has {img.shape}: expected one 3D '
                'shape; re-extract the release')
        if not np.allclose(lbl.affine, img.affine, rtol=1e-5, atol=1e-4):
            raise SynapseConversionError(
                f'{label_path} has affine {lbl.affine.round(4).tolist()} but {img_path} has '
                f'{img.affine.round(4).tolist()}: the label is not on the image\'s grid; '
                're-extract the release')
        raw = _integer_labels(_nifti_data(lbl, label_path), label_path)
        check_label_ids(raw, NUM_BTCV_IDS, label_path, error=SynapseConversionError)
        image = to_dhw(_nifti_data(img, img_path))
        label = to_dhw(map_btcv_labels(raw, label_path))
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
        self.axcodes[case] = ''.join(str(c) for c in nib.aff2axcodes(img.affine))
        return image, label, (zooms[2], zooms[1], zooms[0])

    def _prepared(self, case):
        """The case as stored: resampled if asked, windowed or HU; plus its native grid."""
        image, label, spacing = self._read_case(case)
        if case in self.headers and self.intensity == 'hu':
            budget = FOREGROUND_SAMPLE_BUDGET // len(self.headers)
            self.fg_samples.append(sample_foreground(image, label, budget))
        native = None
        if self.target_spacing is not None:
            native = dict(label=label, spacing=spacing)
            image, label = resample_volume(image, label, spacing, self.target_spacing)
            spacing = self.target_spacing
        if self.intensity == 'window':
            image = window_hu(image)
        return image, label, spacing, native

    def write_train_case(self, case, root, volume=False):
        """Write every axial slice of the case to ``root/train_slices/`` (and the volume)."""
        image, label, spacing, _ = self._prepared(case)
        if image.shape[0] != len(self.train_slices[case]):
            raise SynapseConversionError(
                f'{self.files[case][0]}: {image.shape[0]} slices, but its header promised '
                f'{len(self.train_slices[case])}; the file is damaged: re-extract it')
        for k, stem in enumerate(self.train_slices[case]):
            save_slice(osp.join(root, TRAIN_SLICE_DIR, f'{stem}.npz'), image[k], label[k])
        if volume:
            save_volume(osp.join(root, TRAIN_VOLUME_DIR, f'{case}.npz'), image, label, spacing)

    def write_test_case(self, case, root):
        """Write the case as a volume with its spacing (and native grid) to ``test_volumes/``."""
        image, label, spacing, native = self._prepared(case)
        save_case_volume(osp.join(root, TEST_VOLUME_DIR, f'{case}.npz'), image, label, spacing,
                         native)

    def meta(self):
        return dict(spacing_note='(z, y, x) mm from the NIfTI headers; volumes (D, H, W) are the '
                                 'stored voxel arrays (i, j, k) transposed to (k, j, i), as in '
                                 'TransUNet\'s release, without reorientation by the affine',
                    spacing_known=True,
                    hu_window=list(HU_WINDOW) if self.intensity == 'window' else None,
                    label_map={str(k): v for k, v in BTCV_TO_SYNAPSE.items()},
                    source_axcodes=dict(sorted(self.axcodes.items())))


SOURCES = dict(transunet=TransUNetSource, btcv=BTCVSource)


def detect_format(src):
    """Guess the source layout of ``src``: ``'transunet'`` or ``'btcv'``."""
    if osp.isdir(osp.join(src, 'train_npz')) or osp.isdir(osp.join(src, 'test_vol_h5')):
        return 'transunet'
    if any(osp.isdir(osp.join(src, sub, 'img'))
           for sub in ('', 'Training', osp.join('RawData', 'Training'))):
        return 'btcv'
    raise SynapseConversionError(
        f'{src} holds neither TransUNet\'s release (train_npz/, test_vol_h5/) nor the raw BTCV '
        'data (img/, label/); check the path')


# ---------------------------------------------------------------------------------------------
# splits


def _abbrev(names, limit=20):
    names = list(names)
    return ', '.join(names[:limit]) + (f', ... ({len(names)} in all)' if len(names) > limit
                                       else '')


def check_cases(train_cases, test_cases, src):
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


def few_shot_split_name(fraction):
    """Name of the few-shot split file for ``fraction``, e.g. 0.1 -> ``'train_10pct'``."""
    return f'train_{round(fraction * 100, 6):g}pct'


def sample_few_shot(train_slices, fraction=0.1, seed=0):
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


def read_slice_list(path, train_slices):
    """Read a user-supplied few-shot list and check that every entry is a training slice.

    Lines are slice names (``case0005_slice042``; a directory or an ``.npz`` suffix is dropped);
    blank lines and lines starting with ``#`` are skipped; duplicates are kept once.

    Args:
        path (str): the list file.
        train_slices (dict[str, list[str]]): case -> its slice names (what will be written).

    Returns:
        list[str]: the listed slice names, in file order.
    """
    def slice_name(line):
        name = osp.basename(line)
        return name[:-4] if name.endswith('.npz') else name

    names = read_name_list(path, 'the few-shot list', 'slice', normalise=slice_name,
                           repeats='drop', error=SynapseConversionError)
    available = {s for stems in train_slices.values() for s in stems}
    missing = [n for n in names if n not in available]
    if missing:
        raise SynapseConversionError(
            f'the few-shot list {path} names {len(missing)} slice(s) that are not training slices '
            f'of the source: {_abbrev(missing)}. Entries must be <case>_slice<NNN> of the '
            f'training cases present ({_abbrev(train_slices, 30)}); test cases '
            f'{list(TEST_CASES)} are never training slices')
    return names


# ---------------------------------------------------------------------------------------------
# conversion


def convert_synapse(src, dst, fmt='auto', few_shot_fraction=0.1, seed=0, few_shot_list=None,
                    few_shot_name=None, overwrite=False, log=None, train_volumes=False,
                    intensity='window', target_spacing=None):
    """Convert a Synapse source (TransUNet's release or raw BTCV) into mmsam's format at ``dst``.

    Writes ``train_slices/``, ``test_volumes/``, ``splits/{train,test}.txt``, the few-shot split,
    with ``train_volumes`` also ``train_volumes/`` and ``splits/train_volumes.txt``, and
    ``meta.json`` (see :mod:`mmsam.datasets.volume_io`) into a temporary folder next to
    ``dst``, then renames it to ``dst``; on any error nothing is left at ``dst``.

    Args:
        src (str): source folder.
        dst (str): output data root; must not exist, be empty, or (with ``overwrite``) hold a
            previous output of this converter.
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
        few_shot = dict(split=name, names=read_slice_list(few_shot_list, source.train_slices),
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert Synapse multi-organ CT (TransUNet release or raw BTCV) into '
                    'mmsam\'s slice/volume format.')
    parser.add_argument('src', help='source folder')
    parser.add_argument('dst', help='output data root (e.g. data/synapse)')
    parser.add_argument('--format', default='auto', choices=['auto', *SOURCES],
                        help='source layout (default: detected)')
    parser.add_argument('--few-shot-fraction', type=float, default=None,
                        help='draw this share of training slices as the few-shot split '
                             '(0: none); default: the published H-SAM list')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the few-shot draw (giving it asks for a draw; 0 by '
                             'default)')
    parser.add_argument('--few-shot-list', default=None,
                        help='file of slice names to use as the few-shot split; default: H-SAM\'s '
                             'published 221-slice list (lists_Synapse/train_220.txt, shipped in '
                             'tools/dataset_converters/splits/hsam/) unless --few-shot-fraction '
                             'or --seed asks for a seeded draw')
    parser.add_argument('--few-shot-name', default=None,
                        help='few-shot split name (default: from the fraction, train_10pct)')
    parser.add_argument('--train-volumes', action='store_true',
                        help='also write the training cases as volumes to train_volumes/ (3D)')
    parser.add_argument('--intensity', default='window', choices=INTENSITY_MODES,
                        help='window: TransUNet [-125, 275] HU -> [0, 1] (default); hu: raw HU '
                             'and CT foreground statistics in meta.json (btcv only)')
    parser.add_argument('--target-spacing', default='none',
                        help='none (default), auto (nnU-Net\'s rule) or Z,Y,X mm: resample '
                             'every case (btcv only)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a previous output of this converter at DST')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; returns the exit status (0 done, 1 conversion error)."""
    args = parse_args(argv)
    few_shot_list = args.few_shot_list
    if few_shot_list is None and args.few_shot_fraction is None and args.seed is None:
        few_shot_list = 'hsam'  # the published split, see parse_args
    fraction = 0.1 if args.few_shot_fraction is None else args.few_shot_fraction
    return run_conversion(lambda: convert_synapse(
        args.src, args.dst, fmt=args.format, few_shot_fraction=fraction,
        seed=args.seed or 0, few_shot_list=few_shot_list, few_shot_name=args.few_shot_name,
        overwrite=args.overwrite, log=print, train_volumes=args.train_volumes,
        intensity=args.intensity, target_spacing=args.target_spacing))


if __name__ == '__main__':
    sys.exit(main())

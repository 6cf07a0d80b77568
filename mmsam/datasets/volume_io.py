"""Reading and writing mmsam's on-disk format for slice-trained, volume-tested CT/MR data.

The format (written by the dataset converters and the synthetic generators)::

    <data_root>/
      meta.json                       {"classes": [...], "palette": [...], "spacing_note": ...}
      train_slices/<case>_slice<NNN>.npz   (see slice_stem)
          image (H, W) float32 in [0, 1]; label (H, W) uint8 class ids (0 = background)
      test_volumes/<case>.npz
          image (D, H, W) float32 in [0, 1]; label (D, H, W) uint8; spacing (3,) float (z, y, x) mm
      train_volumes/<case>.npz        (3D methods) same schema as test_volumes/
      splits/train.txt                one slice name per line (file stem, no extension)
      splits/test.txt                 one case name per line
      splits/train_volumes.txt        (3D methods) one case name per line

Volumes resampled by a converter may also hold ``native_label`` (D0, H0, W0) uint8,
``native_spacing`` (3,) and ``native_shape`` (3,), so that evaluation runs on the original grid.
``meta.json`` of 3D data may hold ``intensity`` (``'hu'``, ``'mr'``, ``'zscore'`` or ``'unit'``),
``ct_foreground`` (``mean``, ``std``, ``percentile_00_5``, ``percentile_99_5`` of the labelled
voxels of the training cases, nnU-Net's CT normalisation statistics) and ``target_spacing``.

Every writer goes through :func:`atomic_savez`, so an interrupted conversion never leaves a
half-written file that a later run would take for a good one.
"""
import json
import os.path as osp
import zipfile
import zlib

import numpy as np

from mmsam.utils.io import atomic_savez, atomic_write_text

TRAIN_SLICE_DIR = 'train_slices'
TEST_VOLUME_DIR = 'test_volumes'
TRAIN_VOLUME_DIR = 'train_volumes'
SPLIT_DIR = 'splits'
META_FILE = 'meta.json'


def slice_stem(case, index):
    """Name (file stem) of slice ``index`` of ``case`` in ``train_slices/``: ``<case>_slice<NNN>``."""
    return f'{case}_slice{index:03d}'


def parse_slice_stem(stem):
    """Split a slice stem into ``(case, index)``; index 0 when the stem has no slice number."""
    case, _, index = stem.rpartition('_slice')
    return (case, int(index)) if case and index.isdigit() else (stem, 0)


def _check_pair(image, label, ndim, what):
    if image.ndim != ndim or label.shape != image.shape:
        raise ValueError(f'{what}: expected image and label of the same {ndim}-D shape, got '
                         f'image {image.shape} and label {label.shape}')


def save_slice(path, image, label):
    """Save one 2D training slice.

    Args:
        path (str): target ``.npz`` file.
        image (ndarray): (H, W) intensities in [0, 1].
        label (ndarray): (H, W) integer class ids.
    """
    _check_pair(image, label, 2, path)
    atomic_savez(path, image=image.astype(np.float32), label=label.astype(np.uint8))


def save_volume(path, image, label, spacing=(1.0, 1.0, 1.0)):
    """Save one 3D test volume.

    Args:
        path (str): target ``.npz`` file.
        image (ndarray): (D, H, W) intensities in [0, 1].
        label (ndarray): (D, H, W) integer class ids.
        spacing (sequence[float]): voxel size (z, y, x) in mm.
    """
    _check_pair(image, label, 3, path)
    atomic_savez(path, image=image.astype(np.float32), label=label.astype(np.uint8),
                 spacing=np.asarray(spacing, dtype=np.float64))


def load_npz(path, keys=('image', 'label')):
    """Load ``keys`` from an ``.npz`` file, with an error naming the file when it is unusable.

    Returns:
        dict[str, ndarray]: the requested arrays.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'data file {path} does not exist; (re)run the dataset converter '
                                'or delete the data root to regenerate synthetic data')
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise KeyError(f'data file {path} lacks key(s) {missing}; it has {npz.files}')
            return {k: npz[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        # zlib.error: damaged bytes inside a compressed member
        raise OSError(f'cannot read data file {path} ({err}); it is corrupt or not an .npz '
                      'written by mmsam: re-run the converter for it') from err


def read_split(data_root, name):
    """Read ``splits/<name>.txt`` under ``data_root`` into a list of non-empty names."""
    path = osp.join(data_root, SPLIT_DIR, f'{name}.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file {path} does not exist; run the dataset converter '
                                f'for {data_root} first')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def write_split(data_root, name, items):
    """Write ``items`` one per line to ``splits/<name>.txt`` under ``data_root``."""
    atomic_write_text(osp.join(data_root, SPLIT_DIR, f'{name}.txt'),
                      ''.join(f'{item}\n' for item in items))


def read_meta(data_root):
    """Read ``meta.json`` under ``data_root``."""
    path = osp.join(data_root, META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist; run the dataset converter first')
    with open(path) as f:
        return json.load(f)


def write_meta(data_root, meta):
    """Write ``meta`` as ``meta.json`` under ``data_root``."""
    atomic_write_text(osp.join(data_root, META_FILE), json.dumps(meta, indent=2))


def npz_array_shape(path, key):
    """Read the shape of array ``key`` in an ``.npz`` from its header, without loading it."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f'{key}.npy') as member:
            version = np.lib.format.read_magic(member)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)(member)
            return header[0]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise OSError(f'cannot read array {key!r} of data file {path} ({err}); re-run the '
                      'converter for it') from err

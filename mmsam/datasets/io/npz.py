"""mmsam's ``.npz`` slice and volume files (schema: :mod:`mmsam.datasets.io.data_root`), and
arrays of other releases' ``.npz`` files.

Every writer is atomic (:func:`mmsam.utils.io.atomic_savez`).
"""
import os.path as osp
import zipfile
import zlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from mmsam.utils.io import atomic_savez

#: What ``np.load`` raises for a damaged file (zlib.error: damaged bytes inside a member).
NPZ_READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error)


def _check_pair(image, label, ndim, what):
    if image.ndim != ndim or label.shape != image.shape:
        raise ValueError(f'{what}: expected image and label of the same {ndim}-D shape, got '
                         f'image {image.shape} and label {label.shape}')


def save_slice(path: str, image: np.ndarray, label: np.ndarray) -> None:
    """Save one 2D training slice.

    Args:
        path (str): target ``.npz`` file.
        image (ndarray): (H, W) intensities in [0, 1].
        label (ndarray): (H, W) integer class ids.
    """
    _check_pair(image, label, 2, path)
    atomic_savez(path, image=image.astype(np.float32), label=label.astype(np.uint8))


def save_volume(path: str, image: np.ndarray, label: np.ndarray,
                spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
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


def load_npz(path: str, keys: Sequence[str] = ('image', 'label')) -> Dict[str, np.ndarray]:
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
    except NPZ_READ_ERRORS as err:
        raise OSError(f'cannot read data file {path} ({err}); it is corrupt or not an .npz '
                      'written by mmsam: re-run the converter for it') from err


def npz_array_shape(path: str, key: str) -> Tuple[int, ...]:
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


def save_case_volume(path: str, image: np.ndarray, label: np.ndarray, spacing: Sequence[float],
                     native: Optional[dict] = None) -> None:
    """Save a volume (schema of :func:`save_volume`), with its native grid when resampled.

    Args:
        path (str): target ``.npz`` file.
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) class ids.
        spacing (sequence[float]): (z, y, x) spacing of the arrays, mm.
        native (dict | None): ``label`` (D0, H0, W0) and ``spacing`` (3,) of the original
            grid, stored as ``native_label``, ``native_spacing`` and ``native_shape``.
    """
    if native is None:
        save_volume(path, image, label, spacing)
        return
    if image.ndim != 3 or label.shape != image.shape or np.ndim(native['label']) != 3:
        raise ValueError(f'{path}: expected 3-D image and label of one shape and a 3-D native '
                         f'label, got {image.shape}, {label.shape}, {np.shape(native["label"])}')
    atomic_savez(path, image=image.astype(np.float32), label=label.astype(np.uint8),
                 spacing=np.asarray(spacing, dtype=np.float64),
                 native_label=np.asarray(native['label']).astype(np.uint8),
                 native_spacing=np.asarray(native['spacing'], dtype=np.float64),
                 native_shape=np.asarray(np.shape(native['label']), dtype=np.int64))


def read_npz_arrays(path: str, keys: Sequence[str], error: type = ValueError,
                    expected: str = 're-download the file') -> Dict[str, np.ndarray]:
    """Read ``keys`` from an ``.npz`` of a data release, with errors naming the file.

    Args:
        path (str): the ``.npz`` file.
        keys (sequence[str]): the arrays to read.
        error (type): exception class to raise.
        expected (str): what the file should hold and what to do, ending the message about a
            missing key.

    Returns:
        dict[str, ndarray]: the arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if not missing:
                return {k: npz[k] for k in keys}
            files = npz.files
    except NPZ_READ_ERRORS as err:
        raise error(f'cannot read {path} ({type(err).__name__}: {err}); the file is damaged or '
                    'not an .npz: re-download or re-extract it') from err
    raise error(f'{path} lacks key(s) {missing} (it has {files}); {expected}')

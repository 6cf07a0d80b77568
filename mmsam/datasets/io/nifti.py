"""NIfTI (``.nii``, ``.nii.gz``): the one reader (nibabel) and the writer of label volumes.

Every NIfTI file mmsam reads goes through :func:`open_nifti` (header only: readable, the
expected number of axes, the voxel limit) and :func:`read_nifti_voxels`, so a damaged, 4D or
oversized file gets the same check and message everywhere. The caller passes the error type it
raises and the advice for a damaged file (re-download a release, re-export one's own file).

Array convention: the voxel array (i, j, k) of a file is held as (k, j, i) = (D, H, W)
(:func:`nifti_to_dhw`); nothing is reoriented, so a label volume maps back onto its scan by the
same transpose (:func:`label_image`).
"""
import gzip
from typing import Optional, Tuple

import numpy as np

from mmsam.utils.io import atomic_write_bytes
from mmsam.utils.limits import check_voxel_limit

NIFTI_SUFFIXES = ('.nii', '.nii.gz')
#: Advice for a damaged file when the caller gives none.
CHECK_FILE = 'check the file (is it complete?)'


def nifti_to_dhw(array: np.ndarray) -> np.ndarray:
    """Reorder a NIfTI voxel array (i, j, k) = (x, y, z) to (k, j, i) = (D, H, W).

    Args:
        array (ndarray): (I, J, K) voxels as stored.

    Returns:
        ndarray: (K, J, I) contiguous.
    """
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def _dims_hint(ndim: int) -> str:
    if ndim == 3:
        return ('one 3D scalar volume is needed: split a 4D series (time points, channels) '
                'into 3D files first')
    return f'one {ndim}D image is needed'


def open_nifti(path: str, ndim: int = 3, error: type = ValueError, advice: str = CHECK_FILE,
               dims_hint: Optional[str] = None, max_voxels: Optional[int] = None):
    """Open a NIfTI file's header as an ``ndim``-D image; no voxel is read.

    Trailing axes of length 1 beyond ``ndim`` are dropped ((H, W, 1) is 2D, (I, J, K, 1) 3D).

    Args:
        path (str): the file.
        ndim (int): number of axes the image must have (2 or 3).
        error (type): exception class to raise.
        advice (str): what to do with a damaged file, ending the message.
        dims_hint (str, optional): what to do with an image of other dimensions.
        max_voxels (int, optional): the voxel limit (see :mod:`mmsam.utils.limits`).

    Returns:
        nibabel.Nifti1Image: the image (a slicer view when axes were dropped), ``ndim`` axes.

    Raises:
        error: unreadable, not ``ndim``-D, over the voxel limit.
    """
    import nibabel as nib

    def unreadable(err):
        return error(f'cannot read {path}: not a readable NIfTI file ({type(err).__name__}: '
                     f'{err}); the file is damaged or not NIfTI: {advice}')

    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises many types (ImageFileError, OSError, ...)
        raise unreadable(err) from err
    shape = tuple(int(s) for s in img.shape)
    kept = shape
    while len(kept) > ndim and kept[-1] == 1:
        kept = kept[:-1]
    if len(kept) != ndim:
        raise error(f'{path}: a {len(shape)}D image of shape {shape} is not a {ndim}D image; '
                    f'{dims_hint or _dims_hint(ndim)}')
    # A header can claim any size: refuse before a voxel is read.
    check_voxel_limit(kept, path, limit=max_voxels, error=error)
    if kept == shape:
        return img
    try:
        if len(kept) >= 3:  # only non-spatial axes go: a header-only view
            return img.slicer[(Ellipsis, ) + (0, ) * (len(shape) - len(kept))]
        # (H, W, 1): nibabel's slicer keeps spatial axes, so the (small) image is read
        return nib.Nifti1Image(np.asanyarray(img.dataobj).reshape(kept), img.affine, img.header)
    except Exception as err:  # truncated gzip: EOFError, zlib.error, OSError, ValueError
        raise unreadable(err) from err


def read_nifti_voxels(img, path: str, error: type = ValueError, advice: str = CHECK_FILE,
                      dtype=np.float32) -> np.ndarray:
    """The voxels of an image from :func:`open_nifti`, scale slope and intercept applied.

    Args:
        img (nibabel.Nifti1Image): the opened image.
        path (str): its file, named in the error.
        error (type): exception class to raise.
        advice (str): what to do with a damaged file.
        dtype (type | None): float dtype of the result; None keeps the stored (scaled) dtype.

    Returns:
        ndarray: (I, J, K) or (I, J) voxels, nibabel's index order.
    """
    try:
        if dtype is None:
            return np.asanyarray(img.dataobj)
        return img.get_fdata(dtype=dtype)
    except Exception as err:  # truncated gzip: EOFError, zlib.error, OSError, ValueError
        raise error(f'cannot read the voxels of {path} ({type(err).__name__}: {err}); the file '
                    f'is damaged or incomplete: {advice}') from err


def nifti_spacing(img) -> Tuple[float, float, float]:
    """Voxel size (z, y, x) mm of a 3D image, i.e. along k, j, i (the header zooms reversed)."""
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    return tuple(zooms[::-1])


def read_nifti_geometry(path: str, error: type = ValueError, advice: str = CHECK_FILE
                        ) -> Tuple[Tuple[int, int, int], Tuple[float, float, float]]:
    """Shape (D, H, W) and spacing (z, y, x) mm of a 3D NIfTI volume, from its header alone.

    Args:
        path (str): the file.
        error (type): exception class to raise.
        advice (str): what to do with a damaged file.

    Returns:
        tuple: ``(shape, spacing)``.
    """
    img = open_nifti(path, 3, error, advice)
    return tuple(int(n) for n in img.shape[::-1]), nifti_spacing(img)


def label_image(volume: np.ndarray, affine: np.ndarray, header=None):
    """A nibabel NIfTI image of a (D, H, W) array on a scan's grid.

    Args:
        volume (ndarray): (D, H, W) labels (uint8) or maps (float32) on the scan's grid.
        affine (ndarray): (4, 4) voxel (i, j, k) -> RAS mm of the scan.
        header (nibabel header, optional): the scan's own NIfTI header; its qform and sform
            (with their codes), units and orientation are kept bit for bit.

    Returns:
        nibabel.Nifti1Image: voxel array (i, j, k).
    """
    import nibabel as nib
    data = nifti_to_dhw(volume)
    if header is not None:
        header = header.copy()
        header.set_data_dtype(data.dtype)
        header.set_slope_inter(1.0, 0.0)
        return nib.Nifti1Image(data, None, header=header)
    image = nib.Nifti1Image(data, affine)
    image.header.set_data_dtype(data.dtype)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units('mm')
    return image


def write_nifti_image(path: str, image) -> str:
    """Write a nibabel image to ``path`` (gzip for ``.gz``) atomically.

    Args:
        path (str): ``.nii`` or ``.nii.gz`` target.
        image (nibabel.Nifti1Image): the image.

    Returns:
        str: ``path``.
    """
    data = image.to_bytes()
    if path.lower().endswith('.gz'):
        data = gzip.compress(data, compresslevel=6)
    atomic_write_bytes(path, data)
    return path

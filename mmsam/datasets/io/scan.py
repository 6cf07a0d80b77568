"""A scan for inference (NIfTI file, DICOM series folder, MetaImage file) with its geometry,
and label volumes written back as NIfTI in that geometry.

Readers, chosen deliberately:

* NIfTI (``.nii``, ``.nii.gz``): :mod:`mmsam.datasets.io.nifti` (nibabel), the reader the
  dataset converters use, so a scan's voxels come out exactly as the converters store them,
  and the output keeps the input's header (qform and sform with their codes) bit for bit.
* DICOM series folder and MetaImage (``.mha``, ``.mhd``): SimpleITK (GDCM sorts the slices
  along the slice normal and gives origin, spacing and direction cosines). Its LPS physical
  space is turned into NIfTI's RAS affine.

Array convention (:func:`mmsam.datasets.io.nifti.nifti_to_dhw`): the voxel array (i, j, k) of
the file is held as (k, j, i) = (D, H, W); nothing is reoriented, so the label volume maps back
onto the scan by the same transpose.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .dicom import dicom_series_files, lps_affine, read_dicom_series, simpleitk
from .metaimage import METAIMAGE_SUFFIXES
from .nifti import (NIFTI_SUFFIXES, label_image, nifti_spacing, nifti_to_dhw, open_nifti,
                    read_nifti_voxels, write_nifti_image)
from mmsam.utils.limits import check_voxel_limit


class MedicalImageError(ValueError):
    """A scan that cannot be read or used; the message names the file and the fix."""


@dataclass
class ScanGeometry:
    """Where a (D, H, W) volume lies in the patient.

    Attributes:
        affine (ndarray): (4, 4) voxel (i, j, k) -> RAS mm, NIfTI's convention.
        shape (tuple[int]): (D, H, W) of the volume.
        spacing (tuple[float]): (z, y, x) voxel size in mm, i.e. along k, j, i.
        source (str): ``'nifti'``, ``'dicom'`` or ``'metaimage'``.
        header (object): the input's nibabel header (NIfTI), else None.
    """

    affine: np.ndarray
    shape: tuple
    spacing: tuple
    source: str
    header: object = field(default=None, repr=False)


def scan_kind(path: str) -> Optional[str]:
    """'nifti', 'dicom' (a folder), 'metaimage', or None for other files."""
    if osp.isdir(path):
        return 'dicom'
    lower = path.lower()
    if lower.endswith(NIFTI_SUFFIXES):
        return 'nifti'
    if lower.endswith(METAIMAGE_SUFFIXES):
        return 'metaimage'
    return None


def expand_scan_folders(paths: List[str]) -> List[str]:
    """Inputs with each folder of NIfTI / MetaImage files replaced by those files (sorted).

    A folder holding no such file stays: it is read as one DICOM series.

    Args:
        paths (list[str]): files and folders.

    Returns:
        list[str]: the inputs, folders of volume files expanded.
    """
    expanded = []
    for path in paths:
        files = []
        if osp.isdir(path):
            files = sorted(osp.join(path, name) for name in os.listdir(path)
                           if name.lower().endswith(NIFTI_SUFFIXES + METAIMAGE_SUFFIXES)
                           and osp.isfile(osp.join(path, name)))
        expanded += files or [path]
    return expanded


def _first_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _sitk_header_shape(path, kind):
    """(I, J, K, ...) voxel grid of a DICOM series or MetaImage as its header states it."""
    info = simpleitk().ImageFileReader()
    if kind == 'dicom':
        files = dicom_series_files(path, MedicalImageError)
        info.SetFileName(files[0])
    else:
        info.SetFileName(path)
    try:
        info.ReadImageInformation()
    except RuntimeError as err:
        raise MedicalImageError(f'{path}: not a readable {kind} image ({_first_line(err)})') \
            from err
    size = tuple(int(s) for s in info.GetSize())
    if kind == 'dicom':
        size = size[:2] + (len(files), )
    if info.GetNumberOfComponents() > 1:
        size = size + (int(info.GetNumberOfComponents()), )
    return size


def _check_3d(shape, path):
    """The 3 spatial sizes of a header shape; 4D (or 2D) scans are refused."""
    squeezed = tuple(shape[:3]) + tuple(s for s in shape[3:] if s != 1)
    if len(shape) < 3 or len(squeezed) != 3:
        raise MedicalImageError(
            f'{path}: a {len(shape)}D image of shape {tuple(shape)}; inference takes one 3D '
            'scalar volume: split a 4D series (time points, channels) into 3D files first')
    return squeezed


def _checked_header(path, max_voxels):
    """The scan's kind, its 3D (I, J, K) header shape and the nibabel image (None
    unless NIfTI), after the checks every reader makes before touching a voxel: a known
    format, an existing path, 3D, one series, the voxel limit."""
    kind = scan_kind(path)
    if kind is None:
        raise MedicalImageError(f'{path}: not a NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd) '
                                'file or a DICOM series folder')
    if not osp.exists(path):
        raise MedicalImageError(f'{path}: no such file or folder')
    if kind == 'nifti':
        nifti = open_nifti(path, 3, MedicalImageError, max_voxels=max_voxels)
        return kind, tuple(int(s) for s in nifti.shape), nifti
    shape = _check_3d(_sitk_header_shape(path, kind), path)
    check_voxel_limit(shape, path, limit=max_voxels, error=MedicalImageError)
    return kind, shape, None


def describe_scan(path: str, max_voxels: Optional[int] = None) -> Tuple[int, int, int]:
    """The (D, H, W) shape of a scan from its header, checked (3D, one series, voxel limit).

    Args:
        path (str): a scan file or DICOM series folder.
        max_voxels (int, optional): the voxel limit.

    Returns:
        tuple[int, int, int]: (D, H, W).

    Raises:
        MedicalImageError: as :func:`read_scan`.
    """
    shape = _checked_header(path, max_voxels)[1]
    return tuple(int(s) for s in shape[::-1])


def read_scan(path: str, max_voxels: Optional[int] = None) -> Tuple[np.ndarray, ScanGeometry]:
    """Read a scan as a (D, H, W) float32 array with its geometry.

    The voxel count of the header is checked against the limit before any voxel is read.

    Args:
        path (str): ``.nii``/``.nii.gz``, ``.mha``/``.mhd`` or a DICOM series folder.
        max_voxels (int, optional): the voxel limit (see :mod:`mmsam.utils.limits`).

    Returns:
        tuple[ndarray, ScanGeometry]: the (D, H, W) intensities as stored (HU for CT; scale
        slope and intercept applied) and where they lie.

    Raises:
        MedicalImageError: unreadable, not 3D, several DICOM series, over the voxel limit.
    """
    kind, _, nifti = _checked_header(path, max_voxels)
    if kind == 'nifti':
        volume = nifti_to_dhw(read_nifti_voxels(nifti, path, MedicalImageError))
        geometry = ScanGeometry(affine=np.asarray(nifti.affine, dtype=np.float64),
                                shape=volume.shape, spacing=nifti_spacing(nifti), source=kind,
                                header=nifti.header.copy())
        return volume, geometry
    sitk = simpleitk()
    try:
        image = (read_dicom_series(path, MedicalImageError) if kind == 'dicom'
                 else sitk.ReadImage(path))
    except RuntimeError as err:
        raise MedicalImageError(f'{path}: cannot read the {kind} image ({_first_line(err)})') \
            from err
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise MedicalImageError(f'{path}: a {image.GetDimension()}D image with '
                                f'{image.GetNumberOfComponentsPerPixel()} components; inference '
                                'takes one 3D scalar volume')
    volume = sitk.GetArrayFromImage(image).astype(np.float32)  # (k, j, i)
    spacing = tuple(float(s) for s in image.GetSpacing())
    return volume, ScanGeometry(
        affine=lps_affine(image.GetOrigin(), spacing, image.GetDirection()),
        shape=volume.shape, spacing=spacing[::-1], source=kind)


def write_nifti(path: str, volume: np.ndarray, geometry: ScanGeometry) -> str:
    """Write a (D, H, W) array as NIfTI in the scan's geometry, atomically.

    Args:
        path (str): ``.nii`` or ``.nii.gz`` target.
        volume (ndarray): (D, H, W) uint8 labels or float32 maps.
        geometry (ScanGeometry): from :func:`read_scan`; a NIfTI scan's header (qform/sform
            codes, units, orientation) is kept.

    Returns:
        str: ``path``.
    """
    if tuple(volume.shape) != tuple(geometry.shape):
        raise ValueError(f'a volume of shape {volume.shape} on a scan of shape '
                         f'{geometry.shape}')
    return write_nifti_image(path, label_image(volume, geometry.affine, geometry.header))

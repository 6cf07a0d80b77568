"""Reading scans (NIfTI, a DICOM series, MetaImage) with their geometry, and writing label
volumes back as NIfTI in the scan's geometry.

Readers, chosen deliberately:

* NIfTI (``.nii``, ``.nii.gz``): nibabel, the reader the dataset converters use, so a scan's
  voxels come out exactly as ``tools/dataset_converters/synapse.py`` stores them, and the
  output keeps the input's header (qform and sform with their codes) bit for bit.
* DICOM series folder and MetaImage (``.mha``, ``.mhd``): SimpleITK (GDCM sorts the slices
  along the slice normal and gives origin, spacing and direction cosines). Its LPS physical
  space is turned into NIfTI's RAS affine.

Array convention (as the Synapse converter's ``to_dhw``): the voxel array (i, j, k) of the file
is held as (k, j, i) = (D, H, W), i.e. ``volume[k]`` is the k-th slice with rows j and columns
i; nothing is reoriented, so the label volume maps back onto the scan by the same transpose.
"""
import os
import os.path as osp
from dataclasses import dataclass, field

import numpy as np

from mmsam.utils.io import atomic_write_bytes
from mmsam.utils.limits import check_voxel_limit

NIFTI_SUFFIXES = ('.nii', '.nii.gz')
METAIMAGE_SUFFIXES = ('.mha', '.mhd')
# RAS = diag(-1, -1, 1) @ LPS
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


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


def scan_kind(path):
    """'nifti', 'dicom' (a folder), 'metaimage', or None for other files."""
    if osp.isdir(path):
        return 'dicom'
    lower = path.lower()
    if lower.endswith(NIFTI_SUFFIXES):
        return 'nifti'
    if lower.endswith(METAIMAGE_SUFFIXES):
        return 'metaimage'
    return None


def expand_scan_folders(paths):
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


def _sitk():
    import SimpleITK as sitk
    return sitk


def _dicom_files(path):
    """The files of the single DICOM series in folder ``path``."""
    sitk = _sitk()
    reader = sitk.ImageSeriesReader
    try:
        series = reader.GetGDCMSeriesIDs(path)
    except RuntimeError as err:
        raise MedicalImageError(f'{path}: cannot scan the folder for DICOM series ({err})') from err
    if not series:
        raise MedicalImageError(f'{path}: no DICOM series and no NIfTI (.nii, .nii.gz) or '
                                'MetaImage (.mha, .mhd) file found in the folder; give a folder '
                                'holding the .dcm files of one series, volume files, or a '
                                'folder of volume files')
    if len(series) > 1:
        raise MedicalImageError(
            f'{path}: the folder holds {len(series)} DICOM series ({", ".join(series)}); '
            'inference needs one series per folder: move each series into its own folder')
    return reader.GetGDCMSeriesFileNames(path, series[0])


def _sitk_affine(origin, spacing, direction):
    """NIfTI RAS affine of a SimpleITK image's LPS geometry."""
    matrix = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing)[None]
    lps = np.eye(4)
    lps[:3, :3], lps[:3, 3] = matrix, origin
    return _LPS_TO_RAS @ lps


def _header_shape(path, kind):
    """(I, J, K, ...) voxel grid as the header states it (nothing else read)."""
    if kind == 'nifti':
        img = _nifti(path)
        return tuple(int(s) for s in img.shape), img
    sitk = _sitk()
    info = sitk.ImageFileReader()
    if kind == 'dicom':
        files = _dicom_files(path)
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
    return size, None


def _first_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _nifti(path):
    import nibabel as nib
    try:
        return nib.load(path)
    except Exception as err:  # nibabel raises many types (ImageFileError, OSError, ...)
        raise MedicalImageError(f'{path}: not a readable NIfTI file ({type(err).__name__}: '
                                f'{err}); check the file (is it complete?)') from err


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
    shape, nifti = _header_shape(path, kind)
    shape = _check_3d(shape, path)
    check_voxel_limit(shape, path, limit=max_voxels, error=MedicalImageError)
    return kind, shape, nifti


def describe_scan(path, max_voxels=None):
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


def read_scan(path, max_voxels=None):
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
    kind, shape, nifti = _checked_header(path, max_voxels)
    if kind == 'nifti':
        try:
            data = np.asarray(nifti.get_fdata(dtype=np.float32)).reshape(shape)
        except Exception as err:  # truncated gzip: EOFError, zlib.error, OSError, ValueError
            raise MedicalImageError(f'{path}: cannot read the voxels ({type(err).__name__}: '
                                    f'{err}); the file is damaged or incomplete') from err
        zooms = [float(z) for z in nifti.header.get_zooms()[:3]]
        volume = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
        geometry = ScanGeometry(affine=np.asarray(nifti.affine, dtype=np.float64),
                                shape=volume.shape, spacing=tuple(zooms[::-1]), source=kind,
                                header=nifti.header.copy())
        return volume, geometry
    sitk = _sitk()
    try:
        if kind == 'dicom':
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(_dicom_files(path))
            image = reader.Execute()
        else:
            image = sitk.ReadImage(path)
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
        affine=_sitk_affine(image.GetOrigin(), spacing, image.GetDirection()),
        shape=volume.shape, spacing=spacing[::-1], source=kind)


def label_image(volume, geometry):
    """A nibabel NIfTI image of a (D, H, W) array in the scan's geometry.

    Args:
        volume (ndarray): (D, H, W) labels (uint8) or maps (float32) on the scan's grid.
        geometry (ScanGeometry): from :func:`read_scan`.

    Returns:
        nibabel.Nifti1Image: voxel array (i, j, k), the scan's affine (and, for NIfTI input,
        its header: qform/sform codes, units, orientation kept).
    """
    import nibabel as nib
    if tuple(volume.shape) != tuple(geometry.shape):
        raise ValueError(f'a volume of shape {volume.shape} on a scan of shape '
                         f'{geometry.shape}')
    data = np.ascontiguousarray(np.transpose(volume, (2, 1, 0)))
    if geometry.header is not None:
        header = geometry.header.copy()
        header.set_data_dtype(data.dtype)
        header.set_slope_inter(1.0, 0.0)
        image = nib.Nifti1Image(data, None, header=header)
        # the header's own qform and sform (with their codes) are kept as they are
        return image
    image = nib.Nifti1Image(data, geometry.affine)
    image.header.set_data_dtype(data.dtype)
    image.set_qform(geometry.affine, code=1)
    image.set_sform(geometry.affine, code=1)
    image.header.set_xyzt_units('mm')
    return image


def write_nifti(path, volume, geometry):
    """Write a (D, H, W) array as NIfTI in the scan's geometry, atomically
    (:func:`mmsam.utils.io.atomic_write_bytes`).

    Args:
        path (str): ``.nii`` or ``.nii.gz`` target.
        volume (ndarray): (D, H, W) uint8 labels or float32 maps.
        geometry (ScanGeometry): from :func:`read_scan`.

    Returns:
        str: ``path``.
    """
    import gzip
    data = label_image(volume, geometry).to_bytes()
    if path.lower().endswith('.gz'):
        data = gzip.compress(data, compresslevel=6)
    atomic_write_bytes(path, data)
    return path

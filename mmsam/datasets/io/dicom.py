"""DICOM series folders, read with SimpleITK (GDCM sorts the slices along the slice normal)."""
from typing import List

import numpy as np

#: NIfTI's RAS = diag(-1, -1, 1) @ DICOM's LPS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def simpleitk():
    """The SimpleITK module, imported on first use (only scan reading needs it)."""
    import SimpleITK as sitk
    return sitk


def dicom_series_files(path: str, error: type = ValueError) -> List[str]:
    """The files of the single DICOM series in folder ``path``, in slice order.

    Args:
        path (str): a folder holding the ``.dcm`` files of one series.
        error (type): exception class to raise.

    Returns:
        list[str]: the series' files, sorted by GDCM.

    Raises:
        error: the folder cannot be scanned, holds no series or several.
    """
    reader = simpleitk().ImageSeriesReader
    try:
        series = reader.GetGDCMSeriesIDs(path)
    except RuntimeError as err:
        raise error(f'{path}: cannot scan the folder for DICOM series ({err})') from err
    if not series:
        raise error(f'{path}: no DICOM series and no NIfTI (.nii, .nii.gz) or '
                    'MetaImage (.mha, .mhd) file found in the folder; give a folder '
                    'holding the .dcm files of one series, volume files, or a '
                    'folder of volume files')
    if len(series) > 1:
        raise error(
            f'{path}: the folder holds {len(series)} DICOM series ({", ".join(series)}); '
            'inference needs one series per folder: move each series into its own folder')
    return list(reader.GetGDCMSeriesFileNames(path, series[0]))


def read_dicom_series(path: str, error: type = ValueError):
    """Read the single DICOM series in folder ``path`` as one SimpleITK image.

    Args:
        path (str): the series folder.
        error (type): exception class to raise.

    Returns:
        SimpleITK.Image: the volume with its origin, spacing and direction (LPS).
    """
    reader = simpleitk().ImageSeriesReader()
    reader.SetFileNames(dicom_series_files(path, error))
    return reader.Execute()


def lps_affine(origin, spacing, direction) -> np.ndarray:
    """NIfTI RAS affine (4, 4) of a SimpleITK image's LPS geometry.

    Args:
        origin (sequence[float]): (3,) position of voxel (0, 0, 0), LPS mm.
        spacing (sequence[float]): (3,) voxel size along i, j, k, mm.
        direction (sequence[float]): (9,) direction cosines, row-major 3 x 3.

    Returns:
        ndarray: (4, 4) voxel (i, j, k) -> RAS mm.
    """
    matrix = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing)[None]
    lps = np.eye(4)
    lps[:3, :3], lps[:3, 3] = matrix, origin
    return LPS_TO_RAS @ lps

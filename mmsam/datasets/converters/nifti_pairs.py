"""An image and its label map as NIfTI files: read together and checked against each other.

Volumetric converters read NIfTI pairs with :func:`read_nifti_pair` (checks: label file, shape,
affine, finite intensities, integer labels) and :func:`check_label_ids`; every file goes
through the one NIfTI reader, :func:`mmsam.datasets.io.nifti.open_nifti`.
"""
import os.path as osp

import numpy as np

from mmsam.datasets.io.nifti import nifti_spacing, nifti_to_dhw, open_nifti, read_nifti_voxels
from .errors import ConversionError, redo_advice
from .pair_mismatch import affine_mismatch_message, shape_mismatch_message

# header floats (float32 qform/sform) differ in the last digits between image and label files
AFFINE_ATOL = 1e-4


def read_nifti_pair(image_path: str, label_path: str, error: type = ConversionError,
                    min_depth: int = 1) -> dict:
    """Read a NIfTI image and its label map as (D, H, W) arrays, checking that they match.

    Args:
        image_path (str): the image file.
        label_path (str): its label file.
        error (type): the converter's :class:`ConversionError` subclass to raise.
        min_depth (int): fewest slices (the header's third axis) a volume may have; 3D-only
            converters pass 2, since a 1-slice volume cannot give a 3D patch.

    Returns:
        dict: ``image`` (D, H, W) float32, ``label`` (D, H, W) int64 ids, ``spacing`` (3,)
        float64 (z, y, x) mm from the header zooms, ``affine`` (4, 4) of the image.
    """
    own = getattr(error, 'own_files', False)
    if not osp.isfile(label_path):
        raise error(f'label file {label_path} for {image_path} does not exist; '
                    + ('give every image its label map' if own else
                       're-extract the release (every image needs its label file)'))
    advice = redo_advice(error)
    img = open_nifti(image_path, 3, error, advice)
    lbl = open_nifti(label_path, 3, error, advice)
    if img.shape[2] < min_depth:
        raise error(f'{image_path} has {img.shape[2]} slice(s) (shape {img.shape}); a volume for '
                    f'3D methods needs at least {min_depth}: the file is cut or not a volume of '
                    'this data set (' + ('' if own else 're-extract the release; ')
                    + '2D images convert with tools/dataset_converters/nifti_folder.py)')
    if lbl.shape != img.shape:
        raise error(shape_mismatch_message(image_path, label_path, img.shape, lbl.shape, own))
    if not np.allclose(lbl.affine, img.affine, rtol=1e-5, atol=AFFINE_ATOL):
        raise error(affine_mismatch_message(image_path, label_path, img.affine, lbl.affine, own,
                                            AFFINE_ATOL))
    image = read_nifti_voxels(img, image_path, error, advice)
    label = read_nifti_voxels(lbl, label_path, error, advice)
    check_finite(image, image_path, error)
    if label.size and not np.all(np.isfinite(label)):
        raise error(f'{label_path}: label contains NaN/inf; the file is damaged, re-download it')
    ids = np.rint(label).astype(np.int64)
    if not np.array_equal(ids, label):
        raise error(f'{label_path}: label values must be integer class ids, got non-integer '
                    f'values in [{label.min()}, {label.max()}]; is this a label file?')
    return dict(image=nifti_to_dhw(image), label=nifti_to_dhw(ids),
                spacing=np.array(nifti_spacing(img), dtype=np.float64),
                affine=np.asarray(img.affine))


def check_finite(image: np.ndarray, path: str, error: type = ConversionError) -> None:
    """Raise ``error`` naming ``path`` when ``image`` holds NaN or infinite intensities.

    Args:
        image (ndarray): (...) intensities.
        path (str): the file they were read from.
        error (type): the converter's :class:`ConversionError` subclass to raise.
    """
    if image.size and not np.all(np.isfinite(image)):
        bad = int(np.count_nonzero(~np.isfinite(image)))
        raise error(f'{path}: {bad} of {image.size} intensities are NaN or infinite; the file is '
                    'damaged or was written with a broken scaling (scl_slope/scl_inter): '
                    're-export it, or replace those voxels before converting')


def check_label_ids(label: np.ndarray, num_classes: int, path: str,
                    error: type = ConversionError) -> np.ndarray:
    """Check that ``label`` only holds ids ``0 .. num_classes - 1``; return it as uint8.

    Args:
        label (ndarray): (...) integer class ids.
        num_classes (int): number of classes, background included.
        path (str): the label file, named in the error.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        ndarray: (...) uint8 ids.
    """
    found = np.unique(label)
    unknown = [int(v) for v in found if not 0 <= v < num_classes]
    if unknown:
        raise error(f'{path}: unknown label id(s) {unknown}; the file holds ids '
                    f'{found.astype(int).tolist()}, allowed are 0-{num_classes - 1}; is it a label '
                    'file of this dataset?')
    return label.astype(np.uint8)

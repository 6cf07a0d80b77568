"""Messages for an image/label NIfTI pair that does not match: what differs and what to do.

The official-release converters (ACDC, AMOS, ...) read files that were right when published,
so a mismatch there means a damaged or mixed-up extraction: the advice is to re-extract the
release. A user's own files (``tools/dataset_converters/nifti_folder.py``) were made by the
user: the advice is to check that the label belongs to the image and to resample it onto the
image's grid, and the message says which part differs.
"""
from typing import List, Sequence

import numpy as np

#: What to do about a label that is not on its image's grid, for a user's own files.
OWN_PAIR_ADVICE = (
    'check that this label map belongs to this image (same case, same series); if it does '
    '(e.g. it was drawn on a resampled, cropped or reoriented copy of the image), resample it '
    "onto the image's grid with nearest-neighbour interpolation, which maps it through both "
    'headers (e.g. SimpleITK: sitk.Resample(label, image, sitk.Transform(), '
    'sitk.sitkNearestNeighbor)), and convert again')


def _fmt(values, digits=4):
    return '(' + ', '.join(f'{float(v):.{digits}g}' for v in values) + ')'


def affine_differences(image_affine: np.ndarray, label_affine: np.ndarray,
                       atol: float = 1e-4) -> List[str]:
    """The parts of two NIfTI affines that differ, in words.

    Args:
        image_affine (ndarray): (4, 4) voxel -> world (mm) matrix of the image.
        label_affine (ndarray): (4, 4) of the label.
        atol (float): tolerance in mm (and direction cosines).

    Returns:
        list[str]: e.g. ``['voxel size (x, y, z) (0.8, 0.8, 2.5) mm vs (1, 1, 1) mm']``;
        parts: voxel size, axis directions (flipped or rotated axes), origin.
    """
    image_affine, label_affine = np.asarray(image_affine), np.asarray(label_affine)
    parts = []
    sizes = [np.linalg.norm(a[:3, :3], axis=0) for a in (image_affine, label_affine)]
    if not np.allclose(sizes[0], sizes[1], atol=atol):
        parts.append(f'voxel size (x, y, z) {_fmt(sizes[0])} mm vs {_fmt(sizes[1])} mm')
    dirs = [a[:3, :3] / np.where(s > 0, s, 1.0) for a, s in zip((image_affine, label_affine),
                                                                sizes)]
    if not np.allclose(dirs[0], dirs[1], atol=atol):
        flipped = [axis for axis, k in zip('xyz', range(3))
                   if np.allclose(dirs[0][:, k], -dirs[1][:, k], atol=atol)]
        parts.append(f'axis directions ({", ".join(flipped)} flipped)' if flipped
                     else 'axis directions (rotated)')
    if not np.allclose(image_affine[:3, 3], label_affine[:3, 3], atol=atol):
        parts.append(f'origin {_fmt(image_affine[:3, 3])} mm vs {_fmt(label_affine[:3, 3])} mm')
    return parts or ['the affine matrices']


def shape_mismatch_message(image_path: str, label_path: str, image_shape: Sequence[int],
                           label_shape: Sequence[int], own_files: bool) -> str:
    """The error text for a label whose voxel array has another shape than its image's.

    Args:
        image_path (str), label_path (str): the pair.
        image_shape (tuple), label_shape (tuple): their (x, y, z) header shapes.
        own_files (bool): the user's own files (else an official release).
    """
    text = (f'{label_path} has shape {tuple(label_shape)} but its image {image_path} has '
            f'{tuple(image_shape)}; the pair does not match')
    if not own_files:
        return f'{text}: re-extract the release'
    return f"{text} (the label must have one value per image voxel): {OWN_PAIR_ADVICE}"


def affine_mismatch_message(image_path: str, label_path: str, image_affine: np.ndarray,
                            label_affine: np.ndarray, own_files: bool,
                            atol: float = 1e-4) -> str:
    """The error text for a label whose affine (voxel -> world) differs from its image's.

    Args:
        image_path (str), label_path (str): the pair.
        image_affine (ndarray), label_affine (ndarray): their (4, 4) affines.
        own_files (bool): the user's own files (else an official release).
        atol (float): tolerance used to name the differing parts.
    """
    if not own_files:
        return (f'{label_path} has affine {np.round(label_affine, 4).tolist()} but its image '
                f'{image_path} has {np.round(image_affine, 4).tolist()}; the label is not on '
                "the image's grid: re-extract the release")
    differs = '; '.join(affine_differences(image_affine, label_affine, atol))
    return (f"{label_path} is not on the grid of its image {image_path}: same shape, but the "
            f'headers differ in {differs} (image vs label): {OWN_PAIR_ADVICE}')

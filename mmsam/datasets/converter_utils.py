"""Helpers shared by the dataset converters in ``tools/dataset_converters/``.

A converter checks its source and destination with :func:`check_folders`, writes everything
inside ``with staged_output(dst) as tmp:`` (a temporary folder next to ``dst``, renamed to
``dst`` once complete and removed on any error), reads user list files with
:func:`read_name_list`, raises a subclass of :class:`ConversionError`, and runs its command
line through :func:`run_conversion`.

Volumetric converters read NIfTI pairs with :func:`read_nifti_pair` (checks: label file, shape,
affine) and :func:`check_label_ids`, choose nnU-Net's target spacing with
:func:`nnunet_target_spacing`, resample with :func:`resample_volume`, collect nnU-Net's CT
foreground statistics with :func:`sample_foreground` / :func:`foreground_stats`, and write cases
with :func:`save_case_volume` (keeping the native label and grid of resampled volumes).
"""
import json
import os
import os.path as osp
import sys
import warnings

import numpy as np

from mmsam.datasets.pair_mismatch import affine_mismatch_message, shape_mismatch_message
from mmsam.datasets.volume_io import META_FILE, save_volume, slice_stem
from mmsam.utils.disk import check_free_disk, folder_bytes, human_bytes
from mmsam.utils.io import atomic_savez
from mmsam.utils.limits import check_voxel_limit
from mmsam.utils.io import staged_output  # noqa: F401  (the converters import it from here)

from .converters.errors import ConversionError, redo_advice as _redo


#: A converted data root needs at most about this many times its source's size (float32 slices
#: compressed next to int16 / uint8 sources compressed), checked before anything is written.
OUTPUT_SIZE_FACTOR = 1.5


def is_converter_output(folder, converter_name):
    """Tell whether ``folder`` holds a data root written by the converter ``converter_name``.

    Args:
        folder (str): the folder to look at.
        converter_name (str): the ``converter.name`` recorded in its ``meta.json``.

    Returns:
        bool: True when ``folder/meta.json`` names ``converter_name`` as its converter.
    """
    try:
        with open(osp.join(folder, META_FILE)) as f:
            return json.load(f).get('converter', {}).get('name') == converter_name
    except (OSError, ValueError, AttributeError):
        return False


def check_folders(src, dst, converter_name, overwrite=False, error=ConversionError):
    """Check that ``src`` is a folder and that ``dst`` may be written, before any work.

    ``dst`` may be missing or empty; a non-empty ``dst`` is replaced only with ``overwrite``
    and only when it holds an earlier output of this converter.

    Args:
        src (str): the source folder.
        dst (str): the output data root.
        converter_name (str): name of the converter, as recorded in its ``meta.json``.
        overwrite (bool): allow replacing a previous output of this converter.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        tuple[str, str]: ``src`` and ``dst`` as absolute paths.
    """
    src, dst = osp.abspath(src), osp.abspath(dst)
    if not osp.isdir(src):
        raise error(f'source folder {src} does not exist')
    if osp.exists(dst) and not osp.isdir(dst):
        raise error(f'{dst} exists and is not a folder; choose another DST')
    if osp.isdir(dst) and os.listdir(dst):
        if not overwrite:
            raise error(f'{dst} exists and is not empty; pass --overwrite to replace a previous '
                        'conversion, or choose another DST')
        if not is_converter_output(dst, converter_name):
            raise error(f'{dst} is not empty and is not an output of this converter (no '
                        'meta.json of it); refusing to replace it')
    check_output_space(src, dst, error)
    return src, dst


def check_output_space(src, dst, error=ConversionError):
    """Raise ``error`` when ``dst``'s disk lacks room for the conversion of ``src``.

    The need is estimated as :data:`OUTPUT_SIZE_FACTOR` times the source folder's size (the
    output is staged next to ``dst`` while a previous output still exists).
    """
    source = folder_bytes(src)
    check_free_disk(dst, int(OUTPUT_SIZE_FACTOR * source), 'the converted data set',
                    fix=f'or choose a DST on another disk (estimated as {OUTPUT_SIZE_FACTOR} x '
                    f'the source {src}, {human_bytes(source)})', error=error)


def read_name_list(path, what, item, normalise=None, repeats='error', hint='',
                   error=ConversionError):
    """Read a user list file: one name a line, blank lines and ``#`` comments skipped.

    Args:
        path (str): the list file.
        what (str): what the list is, starting messages, e.g. ``'case list'``.
        item (str): what one line names, e.g. ``'case'``.
        normalise (callable | None): maps a stripped line to a name; may raise ``error``.
        repeats (str): ``'error'`` refuses a name listed twice, ``'drop'`` keeps its first.
        hint (str): appended to the message when the file does not exist.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        list[str]: the names in file order (at least one).
    """
    if not osp.isfile(path):
        raise error(f'{what} {path} does not exist{hint}')
    try:
        with open(path) as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as err:
        raise error(f'cannot read {what} {path} ({err})') from err
    names = [normalise(line) if normalise else line
             for line in lines if line and not line.startswith('#')]
    if not names:
        raise error(f'{what} {path} lists no {item}s')
    if repeats == 'drop':
        return list(dict.fromkeys(names))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise error(f'{what} {path} repeats {item}(s) {repeated}')
    return names


def run_conversion(convert):
    """Run ``convert()`` for a command line: warnings and conversion errors as stderr lines.

    Args:
        convert (callable): runs the conversion; raises :class:`ConversionError` when it
            cannot be done.

    Returns:
        int: the exit status, 0 when done, 1 on a conversion error.
    """
    def show(message, category, filename, lineno, file=None, line=None):
        print(f'warning: {message}', file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter('always')
        warnings.showwarning = show
        try:
            convert()
        except ConversionError as err:
            print(f'error: {err}', file=sys.stderr)
            return 1
    return 0


def slice_names(case, depth):
    """Names (file stems) of a case's ``depth`` training slices, see :func:`slice_stem`."""
    return [slice_stem(case, k) for k in range(depth)]


def choose_labelled(train_cases, labelled, labelled_list, read_list, not_training, error):
    """Pick the labelled training cases: the first ``labelled``, or those in ``labelled_list``.

    Args:
        train_cases (list[str]): training cases in the order "first N" refers to.
        labelled (int): how many leading cases to take when no list is given.
        labelled_list (str | None): file of case names, all from ``train_cases``.
        read_list (callable): reads ``labelled_list`` into case names.
        not_training (str): how the message describes names outside ``train_cases``.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        list[str]: the labelled case names.
    """
    if labelled_list is not None:
        cases = read_list(labelled_list)
        unknown = [c for c in cases if c not in train_cases]
        if unknown:
            raise error(f'labelled list {labelled_list} names case(s) {unknown} that are '
                        f'{not_training}')
        return cases
    if not 1 <= labelled <= len(train_cases):
        raise error(f'--labelled {labelled}: choose 1 to {len(train_cases)} (the number of '
                    'training cases)')
    return list(train_cases[:labelled])


# ---------------------------------------------------------------------------------------------
# volumetric data: NIfTI pairs, nnU-Net's target spacing and resampling, CT foreground statistics

# header floats (float32 qform/sform) differ in the last digits between image and label files
AFFINE_ATOL = 1e-4


def nifti_to_dhw(array):
    """Reorder a NIfTI voxel array (i, j, k) = (x, y, z) to (k, j, i) = (D, H, W)."""
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def _open_nifti(path, error):
    """Open a NIfTI file (header only) as a 3D image; a trailing axis of length 1 is dropped."""
    import nibabel as nib
    try:
        img = nib.load(path)
        shape = tuple(img.shape)
        if len(shape) == 4 and shape[3] == 1:
            img = img.slicer[..., 0]
    except Exception as err:  # nibabel raises many types (ImageFileError, OSError, ...)
        raise error(f'cannot read {path} ({type(err).__name__}: {err}); the file is damaged or '
                    f'not NIfTI: {_redo(error)}') from err
    if len(img.shape) != 3:
        raise error(f'{path}: expected a 3D volume, got shape {shape}')
    # A header can claim any size: refuse before a voxel is read.
    check_voxel_limit(img.shape, path, error=error)
    return img


def _nifti_voxels(img, path, error):
    try:
        return img.get_fdata(dtype=np.float32)
    except Exception as err:  # truncated gzip: EOFError, zlib.error, OSError, ValueError
        raise error(f'cannot read the voxels of {path} ({type(err).__name__}: {err}); the file '
                    f'is damaged: {_redo(error)}') from err


def read_nifti_geometry(path, error=ConversionError):
    """Shape (D, H, W) and spacing (z, y, x) mm of a NIfTI volume, from its header alone."""
    img = _open_nifti(path, error)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    return tuple(int(n) for n in img.shape[::-1]), tuple(zooms[::-1])


def read_nifti_pair(image_path, label_path, error=ConversionError, min_depth=1):
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
    img, lbl = _open_nifti(image_path, error), _open_nifti(label_path, error)
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
    image, label = _nifti_voxels(img, image_path, error), _nifti_voxels(lbl, label_path, error)
    check_finite(image, image_path, error)
    if label.size and not np.all(np.isfinite(label)):
        raise error(f'{label_path}: label contains NaN/inf; the file is damaged, re-download it')
    ids = np.rint(label).astype(np.int64)
    if not np.array_equal(ids, label):
        raise error(f'{label_path}: label values must be integer class ids, got non-integer '
                    f'values in [{label.min()}, {label.max()}]; is this a label file?')
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    return dict(image=nifti_to_dhw(image), label=nifti_to_dhw(ids),
                spacing=np.array(zooms[::-1], dtype=np.float64), affine=np.asarray(img.affine))


def check_finite(image, path, error=ConversionError):
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


def check_label_ids(label, num_classes, path, error=ConversionError):
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


def save_case_volume(path, image, label, spacing, native=None):
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

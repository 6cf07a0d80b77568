"""Writing a scan's prediction: NIfTI volumes in the scan's geometry and PNG slice overlays.

For a scan ``NAME`` (file name without ``.nii``/``.nii.gz``/``.mha``/``.mhd``, or the DICOM
folder's name) :func:`write_scan_outputs` writes into ``out_dir``:

* semantic models: ``NAME_label.nii.gz`` (uint8 class ids);
* multi-hypothesis models: ``NAME_consensus.nii.gz`` (uint8, the majority vote),
  ``NAME_hypothesis<m>.nii.gz`` (uint8 0/1, m = 0 .. M-1) and ``NAME_agreement.nii.gz``
  (float32, the share of the M hypotheses that mark each voxel);
* ``NAME_slice<KKK>.png``: the chosen slices, the prediction over the image, with the
  slice's box prompt (and point prompts) when it had one.

Everything is written into a staging folder inside ``out_dir`` first and moved into place once
all files are complete, so a failure leaves nothing half-written.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmsam.datasets.io.scan import METAIMAGE_SUFFIXES, NIFTI_SUFFIXES, write_nifti
from mmsam.utils.io import atomic_write_png, staged_files
from mmsam.visualization.slice_choice import choose_slices, slice_scores
from mmsam.visualization.slice_overlay import (display_slice, render_slice_comparison,
                                               volume_display_range)
from .scan_inference import ScanPrediction


def scan_name(path: str) -> str:
    """Output name of a scan: its file name without the image suffix (or the folder's name)."""
    base = osp.basename(osp.normpath(path))
    for suffix in ('.nii.gz', ) + NIFTI_SUFFIXES + METAIMAGE_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[:-len(suffix)]
    return base


def chosen_slices(labels: np.ndarray, num: int, explicit: Optional[Sequence[int]] = None,
                  prompted: Optional[Sequence[int]] = None) -> List[int]:
    """Slices to draw: ``explicit`` ones, else the ``num`` with the most classes (of the
    ``prompted`` ones when given)."""
    depth = labels.shape[0]
    if explicit is not None:
        bad = [k for k in explicit if not 0 <= k < depth]
        if bad:
            raise ValueError(f'--picture-slices {bad}: the volume has slices 0..{depth - 1}')
        return list(explicit)
    if num == 0:
        return []
    candidates = list(prompted) if prompted else list(range(depth))
    return choose_slices(slice_scores(labels), candidates, min(num, len(candidates)), depth=depth)


def write_scan_outputs(out_dir: str, name: str, prediction: ScanPrediction, classes: List[str],
                       palette: Optional[list], pictures: int = 2,
                       picture_slices: Optional[List[int]] = None,
                       boxes: Optional[Dict[int, Sequence[float]]] = None,
                       points: Optional[Dict[int, tuple]] = None) -> List[str]:
    """Write a :class:`ScanPrediction`'s files (see the module docstring).

    Args:
        out_dir (str): output folder (created).
        name (str): output name of the scan.
        prediction (ScanPrediction): from :func:`inference_scan`.
        classes (list[str]), palette (list | None): class names (0 = background) and colours.
        pictures (int): slices to draw when ``picture_slices`` is None.
        picture_slices (list[int], optional): the slices to draw.
        boxes (dict[int, Sequence[float]], optional): slice -> its box prompt (x0, y0, x1, y1)
            in pixels of the slice (what :func:`inference_scan` was given), drawn on its picture.
        points (dict[int, tuple], optional): slice -> ``(coords, labels)`` of its point
            prompts, coords (N, 2) (x, y) pixels of the slice, labels (N,) 1 foreground / 0
            background (or None: all foreground), drawn on its picture.

    Returns:
        list[str]: the paths written.
    """
    labels = prediction.labels
    slices = chosen_slices(labels, pictures, picture_slices, prediction.prompted)
    staged = []
    with staged_files(out_dir, name) as stage:
        geometry = prediction.geometry
        if prediction.hypotheses is None:
            staged.append(write_nifti(osp.join(stage, f'{name}_label.nii.gz'), labels, geometry))
        else:
            staged.append(write_nifti(osp.join(stage, f'{name}_consensus.nii.gz'), labels,
                                      geometry))
            for m, hypothesis in enumerate(prediction.hypotheses):
                staged.append(write_nifti(osp.join(stage, f'{name}_hypothesis{m}.nii.gz'),
                                          hypothesis, geometry))
            staged.append(write_nifti(osp.join(stage, f'{name}_agreement.nii.gz'),
                                      prediction.agreement.astype(np.float32), geometry))
        if slices:
            low, high = volume_display_range(prediction.image)
            for k in slices:
                coords, point_labels = (points or {}).get(k, (None, None))
                picture = render_slice_comparison(
                    display_slice(prediction.image[k], low, high), None, labels[k], classes,
                    palette, title=f'{name} slice {k} of {labels.shape[0]}',
                    box=(boxes or {}).get(k), points=coords, point_labels=point_labels)
                path = osp.join(stage, f'{name}_slice{k:03d}.png')
                atomic_write_png(path, picture)
                staged.append(path)
    return [osp.join(out_dir, osp.basename(path)) for path in staged]

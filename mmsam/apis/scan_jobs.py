"""Scans given to ``tools/infer.py`` (NIfTI, MetaImage, DICOM series): every scan's prompts are
checked against its header before any model is built (:func:`plan_scan_jobs`), then each scan
is segmented and its files written in its geometry (:func:`run_scan_job`; a
``SAM2VolumeSegmentor``: :func:`run_sam2_scan_job`).

A job takes one of three paths: box prompts alone (:func:`mmsam.apis.inference_scan`, batched,
slice by slice or by sliding window), clicks and / or a previous mask
(:func:`mmsam.apis.interactive_scan.inference_scan_interactive`, which also writes
``NAME_logits.npz``) or a replayed session (``clicks`` in order,
:func:`mmsam.apis.interactive_scan.inference_scan_propagated`).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch.nn as nn

from mmsam.datasets.io.scan import describe_scan
from .interactive_scan import (inference_scan_interactive, inference_scan_propagated,
                               logits_file_name, write_logits_file)
from .prompts import (PromptError, boxes_for, click_list, command_line_prompts, load_prompts,
                      points_for, previous_mask_for, with_extra_points)
from .sam2_volume_inference import inference_scan_sam2
from .scan_inference import inference_scan
from .scan_outputs import write_scan_outputs


@dataclass
class ScanJob:
    """One scan and its checked prompts.

    Attributes:
        path (str): the scan.
        boxes (dict[int, tuple], optional): slice -> (x0, y0, x1, y1), pixels of the slice;
            None for a model that takes no prompt.
        points (dict[int, tuple], optional): slice -> (coords (N, 2) float32 (x, y), labels
            (N,) int64); None outside the interactive path.
        clicks (list[tuple], optional): (x, y, z, label) in the order given; None outside a
            replayed session (``--propagate``).
        previous_mask (str, optional): a ``NAME_logits.npz`` fed back as the mask prompt.
    """
    path: str
    boxes: Optional[Dict[int, tuple]] = None
    points: Optional[Dict[int, Tuple[np.ndarray, np.ndarray]]] = None
    clicks: Optional[List[Tuple[float, float, int, int]]] = None
    previous_mask: Optional[str] = None

    @property
    def interactive(self) -> bool:
        """Whether the job runs the interactive path (and writes ``NAME_logits.npz``)."""
        return self.points is not None


def scan_prompts(prompts_file: Optional[str], box: Optional[Sequence[float]] = None,
                 slices: Optional[str] = None, points: Optional[Sequence[float]] = None,
                 previous_mask: Optional[str] = None) -> Optional[dict]:
    """The prompts of a prompts file (plus the command line's ``points``), else those of the
    command line; None without any.

    Args:
        prompts_file (str, optional): a JSON file (schema in :mod:`mmsam.apis.prompts`).
        box (Sequence[float], optional): (x0, y0, x1, y1), pixels of the slices.
        slices (str, optional): ``'a:b'``, the slices ``box`` prompts (default all).
        points (Sequence[float], optional): flat groups of 4 numbers (x, y, z, label).
        previous_mask (str, optional): a ``NAME_logits.npz`` of a previous run.

    Raises:
        PromptError: a bad file, box, slice range or point (the message names it).
    """
    if prompts_file:
        return with_extra_points(load_prompts(prompts_file), points)
    return command_line_prompts(box, slices, points, previous_mask)


def plan_scan_jobs(paths: Sequence[str], prompts: Optional[dict], interactive: bool = False,
                   propagate: bool = False, max_voxels: Optional[int] = None) -> List[ScanJob]:
    """Read every scan's header and check its prompts against its (D, H, W) shape.

    Args:
        paths (Sequence[str]): the scans.
        prompts (dict, optional): from :func:`scan_prompts`; None for a model without prompts.
        interactive (bool): clicks / a previous mask / logits wanted: a scan may have clicks
            and no box, and each job gets ``points``.
        propagate (bool): each job gets ``clicks`` in order (a replayed session).
        max_voxels (int, optional): refuse larger scans.

    Returns:
        list[ScanJob]: one per path, in order.

    Raises:
        MedicalImageError: an unreadable or too large scan.
        PromptError: a prompt outside its scan, a scan without any prompt (``interactive``),
            or a ``previous_mask`` with ``propagate``.
    """
    jobs = []
    for path in paths:
        shape = describe_scan(path, max_voxels=max_voxels)
        boxes = boxes_for(prompts, path, shape, required=not interactive) \
            if prompts is not None else None
        points = points_for(prompts, path, shape) if interactive else None
        clicks = click_list(prompts, path, shape) if propagate else None
        if interactive and not boxes and not points:
            raise PromptError(f'{path}: no box or point prompt for it')
        previous_mask = previous_mask_for(prompts, path)
        if propagate and previous_mask is not None:
            raise PromptError(f'--propagate replays the boxes and clicks in order: remove the '
                              f'"previous_mask" of {path} from the prompts file')
        jobs.append(ScanJob(path, boxes, points, clicks, previous_mask))
    return jobs


def run_scan_job(model: nn.Module, job: ScanJob, out_dir: str, name: str, classes: List[str],
                 palette: Optional[list], intensity: str = 'auto',
                 window: Optional[Tuple[float, float]] = None, batch_size: int = 8,
                 max_voxels: Optional[int] = None, intensity_properties: Optional[dict] = None,
                 embedding_cache=None, pictures: int = 2,
                 picture_slices: Optional[List[int]] = None) -> List[str]:
    """Segment one scan and write its files (:func:`mmsam.apis.scan_outputs.write_scan_outputs`,
    plus ``NAME_logits.npz`` on the interactive path) into ``out_dir``.

    Args:
        model (nn.Module): from :func:`mmsam.apis.init_model` (or the ONNX runner).
        job (ScanJob): from :func:`plan_scan_jobs`.
        out_dir (str): where the files go.
        name (str): the files' stem (``NAME.scan``, unique among the inputs).
        classes (list[str]), palette (list, optional): for the labelled pictures.
        intensity, window, max_voxels, intensity_properties: as in
            :func:`mmsam.apis.inference_scan`.
        batch_size (int): slices per forward pass (box prompts alone).
        embedding_cache (callable, optional): the encoder feature cache (interactive paths).
        pictures (int), picture_slices (list[int], optional): the pictures drawn.

    Returns:
        list[str]: the paths written.

    Raises:
        OSError, KeyError, ValueError: an unreadable scan, a previous mask of another scan, or
            a model that cannot take the prompts.
    """
    if job.clicks is not None:
        prediction, logits, digest = inference_scan_propagated(
            model, job.path, job.boxes, job.clicks, intensity=intensity, window=window,
            max_voxels=max_voxels, embedding_cache=embedding_cache)
    elif job.points is None:
        prediction = inference_scan(
            model, job.path, intensity=intensity, window=window, boxes=job.boxes,
            batch_size=batch_size, progress=True, max_voxels=max_voxels,
            intensity_properties=intensity_properties)
    else:
        prediction, logits, digest = inference_scan_interactive(
            model, job.path, job.boxes, job.points, job.previous_mask, intensity=intensity,
            window=window, max_voxels=max_voxels, embedding_cache=embedding_cache)
    paths = write_scan_outputs(out_dir, name, prediction, classes, palette, pictures,
                               picture_slices, boxes=job.boxes, points=job.points)
    if job.interactive:
        paths.append(write_logits_file(logits_file_name(out_dir, name), logits,
                                       prediction.labels.shape, digest))
    return paths


def run_sam2_scan_job(model: nn.Module, path: str, out_dir: str, name: str,
                      box: Sequence[float], key_slice: int, intensity: str = 'auto',
                      window: Optional[Tuple[float, float]] = None,
                      max_voxels: Optional[int] = None,
                      intensity_properties: Optional[dict] = None, pictures: int = 2,
                      picture_slices: Optional[List[int]] = None) -> List[str]:
    """Segment one scan with a ``SAM2VolumeSegmentor`` from ``box`` on slice ``key_slice``
    (:func:`mmsam.apis.inference_scan_sam2`) and write its files (one foreground class).

    Args:
        model (nn.Module): a ``SAM2VolumeSegmentor``.
        path (str): the scan.
        out_dir (str), name (str): as in :func:`run_scan_job`.
        box (Sequence[float]): (x0, y0, x1, y1), pixels of the key slice.
        key_slice (int): index along D of the scan as read.
        intensity, window, max_voxels, intensity_properties: as in
            :func:`mmsam.apis.inference_scan_sam2`.
        pictures (int), picture_slices (list[int], optional): the pictures drawn.

    Returns:
        list[str]: the paths written.
    """
    prediction = inference_scan_sam2(model, path, box, key_slice, intensity=intensity,
                                     window=window, max_voxels=max_voxels,
                                     intensity_properties=intensity_properties)
    return write_scan_outputs(out_dir, name, prediction, ['background', 'foreground'], None,
                              pictures, picture_slices, boxes={key_slice: box})

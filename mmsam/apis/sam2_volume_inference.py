"""Segmenting a scan from a box on one key slice with SAM 2's memory propagation (MedSAM2).

:func:`inference_scan_sam2` reads a NIfTI / DICOM series / MetaImage scan, applies the
config's intensity preset and test pipeline (without its ground-truth prompt step,
``VolumeOrganPrompts``), gives the ``SAM2VolumeSegmentor`` one prompt (``prompt_labels`` [1],
``key_slices`` [k], ``prompt_boxes`` [box], the keys its test data carry) and returns the
propagated mask in the scan's geometry. When the training data were resampled
(``meta.json``'s ``target_spacing``), the scan is resampled to that spacing first as
:func:`mmsam.apis.scan_inference.volume_scan_labels` does for 3D models (the box and key slice
mapped onto the new grid), and the mask comes back to the scan's grid (trilinear on the 0/1
mask, threshold 0.5).
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config

from mmsam.datasets.io.scan import describe_scan, read_scan, scan_kind
from mmsam.registry import MODELS
from .inference import _intensity_info, _run_pipeline, training_data_meta, volume_test_pipeline
from .intensity import apply_intensity, resolve_intensity
from .scan_inference import ScanPrediction, _clips_ct

SEGMENTOR = 'SAM2VolumeSegmentor'
# test-pipeline steps that make prompts from a ground truth, which a user's scan lacks
GROUND_TRUTH_PROMPT_STEPS = ('VolumeOrganPrompts', )


def is_sam2_volume_config(cfg: Config) -> bool:
    """Whether ``cfg`` builds a ``SAM2VolumeSegmentor`` (or a subclass), before building it."""
    model_type = cfg.model.get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    base = MODELS.get(SEGMENTOR)
    return isinstance(cls, type) and base is not None and issubclass(cls, base)


def is_sam2_volume_model(model: nn.Module) -> bool:
    """Whether ``model`` is a ``SAM2VolumeSegmentor`` (box on a key slice, propagation)."""
    base = MODELS.get(SEGMENTOR)
    return base is not None and isinstance(model, base)


def check_key_prompt(box: Sequence[float], key_slice: int, shape: Tuple[int, int, int],
                     where: str) -> Tuple[np.ndarray, int]:
    """Validate a (x0, y0, x1, y1) box on slice ``key_slice`` of a (D, H, W) scan.

    Returns:
        tuple: the box (4,) float32 and the slice index.
    """
    depth, height, width = shape
    box = np.asarray(box, dtype=np.float32).reshape(-1)
    if box.size != 4:
        raise ValueError(f'{where}: the box needs 4 numbers x0 y0 x1 y1, got {box.tolist()}')
    x0, y0, x1, y1 = box.tolist()
    if not (0 <= x0 <= x1 <= width - 1 and 0 <= y0 <= y1 <= height - 1):
        raise ValueError(f'{where}: box {x0:g} {y0:g} {x1:g} {y1:g} must lie in the slices '
                         f'(0 <= x0 <= x1 <= {width - 1}, 0 <= y0 <= y1 <= {height - 1})')
    if isinstance(key_slice, bool) or int(key_slice) != key_slice or \
            not 0 <= int(key_slice) < depth:
        raise ValueError(f'{where}: key slice {key_slice} is not one of the scan\'s slices '
                         f'0..{depth - 1}')
    return box, int(key_slice)


def key_slice_prompt(paths: Sequence[str], box: Optional[Sequence[float]],
                     slices: Optional[str], max_voxels: Optional[int] = None) -> int:
    """Check ``--box X0 Y0 X1 Y1 --slices K`` against every scan's header (before a model is
    built) and return K.

    Args:
        paths (Sequence[str]): the inputs; each must be a scan (NIfTI, DICOM, MetaImage).
        box (Sequence[float] | None): the box in pixels of slice K.
        slices (str | None): the key slice, one index.
        max_voxels (int, optional): the reader's voxel limit.

    Raises:
        ValueError: naming the option or the file.
    """
    if box is None or slices is None:
        raise ValueError(f'a {SEGMENTOR} segments a scan from a box on one key slice: give '
                         '--box X0 Y0 X1 Y1 --slices K (pixels of slice K)')
    try:
        key_slice = int(slices)
    except ValueError:
        raise ValueError(f'--slices {slices}: a {SEGMENTOR} takes one key slice K (the box\'s '
                         'slice), not a range') from None
    for path in paths:
        if scan_kind(path) is None:
            raise ValueError(f'{path}: a {SEGMENTOR} segments scans (NIfTI, MetaImage, a DICOM '
                             'series folder)')
        check_key_prompt(box, key_slice, describe_scan(path, max_voxels=max_voxels), path)
    return key_slice


def map_prompt(box: np.ndarray, key_slice: int, shape: Sequence[int],
               new_shape: Sequence[int]) -> Tuple[np.ndarray, int]:
    """Carry a box and key slice from a (D, H, W) grid to a resampled (D', H', W') one.

    Voxel centres map as ``(i + 0.5) * n' / n - 0.5`` (the grids share their extent); the key
    slice is the nearest resampled slice, the box is clipped to the new slice.
    """
    scale = [n_new / n for n, n_new in zip(shape, new_shape)]
    key = int(np.clip(np.floor((key_slice + 0.5) * scale[0]), 0, new_shape[0] - 1))
    xs = (box[[0, 2]] + 0.5) * scale[2] - 0.5
    ys = (box[[1, 3]] + 0.5) * scale[1] - 0.5
    mapped = np.array([xs[0], ys[0], xs[1], ys[1]], dtype=np.float32)
    limits = np.array([new_shape[2] - 1, new_shape[1] - 1] * 2, dtype=np.float32)
    return np.clip(mapped, 0, limits), key


def resize_mask(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A (D, H, W) 0/1 mask on another grid of the same extent: trilinear, >= 0.5. uint8."""
    if tuple(mask.shape) == tuple(shape):
        return mask.astype(np.uint8)
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    out = F.interpolate(tensor, size=tuple(int(s) for s in shape), mode='trilinear',
                        align_corners=False)
    return (out[0, 0] >= 0.5).numpy().astype(np.uint8)


@torch.no_grad()
def propagate_from_box(model: nn.Module, image: np.ndarray, box: Sequence[float],
                       key_slice: int, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                       intensity_properties: Optional[dict] = None,
                       where: str = 'the volume') -> np.ndarray:
    """The mask a ``SAM2VolumeSegmentor`` propagates from one box, on the given grid.

    Args:
        model (nn.Module): from :func:`mmsam.apis.init_model`.
        image (ndarray): (D, H, W) float32 in model space (the intensity preset applied).
        box (Sequence[float]): (x0, y0, x1, y1) pixels of slice ``key_slice``.
        key_slice (int): the prompted slice.
        spacing (Sequence[float]): (z, y, x) mm.
        intensity_properties (dict, optional): CT statistics for ``NormalizeIntensity3D``.
        where (str): names the input in errors.

    Returns:
        ndarray: (D, H, W) uint8 0/1.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f'{where}: expected a (D, H, W) volume, got shape {image.shape}')
    box, key_slice = check_key_prompt(box, key_slice, image.shape, where)
    shape = tuple(int(s) for s in image.shape)
    spacing = tuple(float(s) for s in spacing)
    steps = [(c, t) for c, t in volume_test_pipeline(model.cfg, loading=False)
             if c.get('type') not in GROUND_TRUTH_PROMPT_STEPS]
    results = dict(img=image, spacing=spacing, native_spacing=spacing, ori_shape=shape,
                   img_shape=shape, native_shape=shape, seg_fields=[], case_id='volume',
                   img_path=where, **_intensity_info(model, intensity_properties))
    packed = _run_pipeline(steps, results, where, model.cfg)
    sample = packed['data_samples']
    # the prompt in pixels of the network input (the pipeline may resize the slices)
    height, width = packed['inputs'].shape[-2:]
    scale = np.array([width / shape[2], height / shape[1]] * 2, np.float32)
    sample.set_metainfo(dict(prompt_labels=np.array([1], np.int64),
                             key_slices=np.array([key_slice], np.int64),
                             prompt_boxes=(box * scale)[None], native_shape=shape))
    (out, ) = model.test_step(dict(inputs=[packed['inputs']], data_samples=[sample]))
    labels = out.pred_sem_seg.data.cpu().numpy()
    labels = labels.reshape(labels.shape[-3:])
    return (labels > 0).astype(np.uint8)


def inference_scan_sam2(model: nn.Module, path: str, box: Sequence[float], key_slice: int,
                        intensity: str = 'auto', window: Optional[Tuple[float, float]] = None,
                        max_voxels: Optional[int] = None,
                        intensity_properties: Optional[dict] = None) -> ScanPrediction:
    """Segment one object of a scan from a box on its key slice, in the scan's geometry.

    Args:
        model (nn.Module): a ``SAM2VolumeSegmentor`` from :func:`mmsam.apis.init_model`.
        path (str): NIfTI file, DICOM series folder or MetaImage file.
        box (Sequence[float]): (x0, y0, x1, y1) in pixels of the scan's slices (x along W).
        key_slice (int): the slice the box is drawn on (index along D of the scan as read).
        intensity (str): ``'auto'`` or a preset of :mod:`mmsam.apis.intensity`.
        window (tuple[float, float], optional): the CT window of ``'window'``.
        max_voxels (int, optional): the voxel limit of the reader.
        intensity_properties (dict, optional): CT statistics (default: the training data's).

    Returns:
        ScanPrediction: ``labels`` (D, H, W) uint8 0/1 on the scan's grid, its geometry, the
        model-space image and ``prompted`` = [key_slice].
    """
    if not is_sam2_volume_model(model):
        raise ValueError(f'{path}: a box on a key slice (--slices K) needs a {SEGMENTOR}; '
                         f'the model is a {type(model).__name__}')
    volume, geometry = read_scan(path, max_voxels=max_voxels)
    meta = training_data_meta(model.cfg)
    preset, window = resolve_intensity(model.cfg, meta, True, intensity, window)
    image = apply_intensity(volume, preset, window)
    box, key_slice = check_key_prompt(box, key_slice, image.shape, path)
    spacing = tuple(float(s) for s in geometry.spacing)
    target = meta.get('target_spacing')
    from mmsam.datasets.converters.nnunet_preprocessing import (ct_clip_range, resample_image,
                                                                resampled_shape)
    if target is None or resampled_shape(image.shape, spacing, target) == image.shape:
        labels = propagate_from_box(model, image, box, key_slice, spacing,
                                    intensity_properties, path)
    else:
        target = tuple(float(s) for s in target)
        stats = intensity_properties if intensity_properties is not None else \
            meta.get('ct_foreground')
        clip = ct_clip_range(stats) if stats and _clips_ct(model.cfg) else None
        resampled = resample_image(image, spacing, target, clip)
        new_box, new_key = map_prompt(box, key_slice, image.shape, resampled.shape)
        mask = propagate_from_box(model, resampled, new_box, new_key, target,
                                  intensity_properties, path)
        labels = resize_mask(mask, image.shape)
    return ScanPrediction(labels=labels, geometry=geometry, image=image, prompted=[key_slice])

"""Segmenting a scan (NIfTI, DICOM series, MetaImage) with any mmsam model, in its geometry.

:func:`inference_scan` reads the scan (:mod:`mmsam.datasets.io.scan`), applies the
config's intensity preset (:mod:`mmsam.apis.intensity`) and runs

* 2D semantic models (SAMed, H-SAM) slice by slice in batches (:func:`inference_model`: the
  config's test pipeline and data preprocessor fit each slice into the input as in testing);
* 3D models (``VolumeSAMSegmentor``) by their sliding window on the whole volume;
* box-prompted multi-hypothesis models (MedSAM, SAM-MCL, SeqSAM, P-SAM) on each slice that has
  a box, through the config's test pipeline and data preprocessor, giving M hypotheses,
  their consensus and the per-voxel share of hypotheses that mark the voxel.

:func:`inference_volume` segments a volume given as an array, an mmsam ``.npz`` file or a scan.

The same function serves a PyTorch model and the ONNX runner of ``tools/deployment``: both
provide ``cfg``, ``data_preprocessor`` and ``predict``.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmseg.structures import SegDataSample

from mmsam.datasets.io.scan import read_scan, scan_kind
from mmsam.datasets.io.npz import load_npz
from .inference import (config_test_pipeline, inference_model, is_hypothesis_model,
                        is_volume_model, pack_slice, predict_in_batches, prepare_volume,
                        sliding_window_labels, slice_pipeline, training_data_meta)
from .intensity import apply_intensity, resolve_intensity


@dataclass
class ScanPrediction:
    """What :func:`inference_scan` returns.

    Attributes:
        labels (ndarray): (D, H, W) uint8 class ids (multi-hypothesis: the consensus).
        geometry (ScanGeometry): the scan's (for writing NIfTI).
        image (ndarray): (D, H, W) float32, the model-space intensities (for pictures).
        hypotheses (ndarray | None): (M, D, H, W) uint8 masks of multi-hypothesis models.
        agreement (ndarray | None): (D, H, W) float32, share of hypotheses marking each voxel.
        prompted (list[int] | None): the slices that had a box.
    """

    labels: np.ndarray
    geometry: object
    image: np.ndarray
    hypotheses: np.ndarray = None
    agreement: np.ndarray = None
    prompted: list = None


@torch.no_grad()
def inference_hypotheses(model: nn.Module, images: List[np.ndarray], boxes: List[Sequence[float]],
                         batch_size: int = 8, progress: bool = False) -> List[SegDataSample]:
    """M hypotheses per box-prompted 2D image.

    Args:
        model: a ``MultiHypothesisSegmentor`` (or the ONNX runner of one).
        images (list[ndarray]): (H, W) slices in [0, 1].
        boxes (list[Sequence[float]]): one (x0, y0, x1, y1) per image, pixels of the image.
        batch_size (int): images per forward pass.
        progress (bool): a progress bar on stderr.

    Returns:
        list[SegDataSample]: with ``pred_hypotheses`` (M, H, W) bool and ``pred_sem_seg``.
    """
    steps = slice_pipeline(model.cfg)

    def batches():
        for start in range(0, len(images), batch_size):
            packed = [pack_slice(steps, img, box) for img, box in
                      zip(images[start:start + batch_size], boxes[start:start + batch_size])]
            yield [p['inputs'] for p in packed], [p['data_samples'] for p in packed]

    return predict_in_batches(model, batches(), len(images), progress)


def model_space(model: nn.Module, volume: np.ndarray, geometry: object, intensity: str = 'auto',
                window: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """Apply the config's intensity preset to a scan's stored values: (D, H, W) float32."""
    volume_model = is_volume_model(model)
    preset, window = resolve_intensity(model.cfg, training_data_meta(model.cfg), volume_model,
                                       intensity, window)
    return apply_intensity(volume, preset, window)


def _clips_ct(cfg) -> bool:
    """Whether the config's test pipeline clips CT to the foreground window
    (``NormalizeIntensity3D(mode='ct')``, nnU-Net's CTNormalization)."""
    return any(t.get('type') == 'NormalizeIntensity3D' and t.get('mode', 'ct') == 'ct'
               and t.get('clip', True) for t in config_test_pipeline(cfg))


def volume_scan_labels(model: nn.Module, image: np.ndarray, spacing: Sequence[float],
                       intensity_properties: Optional[dict] = None,
                       progress: bool = False) -> np.ndarray:
    """A 3D model's labels of a scan, on the scan's grid, as nnU-Net predicts from files.

    When the training data were resampled (``meta.json``'s ``target_spacing``), the scan is
    resampled to that spacing first as nnU-Net's preprocessor does (CT clipped to the
    foreground window, then order 3, nearest along an anisotropic z:
    :func:`mmsam.datasets.converters.nnunet_preprocessing.resample_image`); the model's blended
    logits then come back to the scan's grid by nnU-Net's export path (``VolumeSAMSegmentor``
    with ``native_shape`` / ``native_spacing``). Otherwise the model runs on the scan's grid.

    Args:
        model (nn.Module): a ``VolumeSAMSegmentor`` from :func:`init_model`.
        image (ndarray): (D, H, W) float32 in model space (:func:`model_space`).
        spacing (Sequence[float]): (z, y, x) mm of the scan.
        intensity_properties (dict, optional): CT statistics (default: the training data's).
        progress (bool): a progress bar over the windows.

    Returns:
        ndarray: (D, H, W) uint8 class ids.
    """
    from mmsam.datasets.converters.nnunet_preprocessing import (ct_clip_range, resample_image,
                                                                resampled_shape)
    spacing = tuple(float(s) for s in spacing)
    meta = training_data_meta(model.cfg)
    target = meta.get('target_spacing')
    if target is None or resampled_shape(image.shape, spacing, target) == image.shape:
        packed = prepare_volume(model, image, intensity_properties, spacing=spacing)
        return sliding_window_labels(model, packed, progress)
    target = tuple(float(s) for s in target)
    stats = intensity_properties if intensity_properties is not None else \
        meta.get('ct_foreground')
    clip = ct_clip_range(stats) if stats and _clips_ct(model.cfg) else None
    packed = prepare_volume(model, resample_image(image, spacing, target, clip),
                            intensity_properties, spacing=target)
    packed['data_samples'].set_metainfo(dict(native_shape=tuple(image.shape),
                                             native_spacing=spacing))
    return sliding_window_labels(model, packed, progress)


def inference_scan(model: nn.Module, path: str, intensity: str = 'auto',
                   window: Optional[Tuple[float, float]] = None,
                   boxes: Optional[Dict[int, tuple]] = None, batch_size: int = 8,
                   progress: bool = False, max_voxels: Optional[int] = None,
                   intensity_properties: Optional[dict] = None) -> ScanPrediction:
    """Segment a NIfTI / DICOM series / MetaImage scan.

    Args:
        model: from :func:`init_model` (or the ONNX runner).
        path (str): the scan file or DICOM folder.
        intensity (str): ``'auto'`` or a preset of :mod:`mmsam.apis.intensity`.
        window (tuple[float, float], optional): the CT window of ``'window'``.
        boxes (dict[int, tuple], optional): slice -> box (box-prompted models; see
            :func:`mmsam.apis.prompts.boxes_for`).
        batch_size (int): slices per forward pass (2D models).
        progress (bool): a progress bar over slices or windows on stderr.
        max_voxels (int, optional): the voxel limit.
        intensity_properties (dict, optional): 3D models' CT statistics.

    Returns:
        ScanPrediction: labels (D, H, W) on the scan's grid, and its geometry.
    """
    volume, geometry = read_scan(path, max_voxels=max_voxels)
    image = model_space(model, volume, geometry, intensity, window)
    if is_volume_model(model):
        labels = volume_scan_labels(model, image, geometry.spacing, intensity_properties,
                                    progress)
        return ScanPrediction(labels=labels, geometry=geometry, image=image)
    if is_hypothesis_model(model):
        if not boxes:
            raise ValueError(f'{path}: {type(model).__name__} is box-prompted: give a box '
                             '(--box X0 Y0 X1 Y1 [--slices a:b] or --prompts FILE.json)')
        prompted = sorted(boxes)
        samples = inference_hypotheses(model, [image[k] for k in prompted],
                                       [boxes[k] for k in prompted], batch_size, progress)
        num = samples[0].pred_hypotheses.data.shape[0]
        hypotheses = np.zeros((num, ) + image.shape, np.uint8)
        labels = np.zeros(image.shape, np.uint8)
        for k, sample in zip(prompted, samples):
            hypotheses[:, k] = sample.pred_hypotheses.data.cpu().numpy()
            labels[k] = sample.pred_sem_seg.data[0].cpu().numpy()
        agreement = hypotheses.mean(0, dtype=np.float32)
        return ScanPrediction(labels=labels, geometry=geometry, image=image,
                              hypotheses=hypotheses, agreement=agreement, prompted=prompted)
    if boxes:
        raise ValueError(f'{path}: {type(model).__name__} with a {type(model.decode_head).__name__}'
                         ' needs no prompt; remove --box / --prompts')
    samples = inference_model(model, list(image), batch_size=batch_size, progress=progress)
    labels = np.stack([s.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8) for s in samples])
    return ScanPrediction(labels=labels, geometry=geometry, image=image)


def inference_volume(model: nn.Module, volume: Union[str, np.ndarray], batch_size: int = 8,
                     progress: bool = False, intensity_properties: Optional[dict] = None,
                     **scan_options) -> np.ndarray:
    """Segment a 3D volume: slice by slice with a 2D model, by sliding window with a 3D one.

    A NIfTI file, DICOM series folder or MetaImage file goes through
    :func:`mmsam.apis.scan_inference.inference_scan` (intensity preset, prompts, geometry);
    its ``labels`` are returned (use ``inference_scan`` for the geometry and hypotheses).

    Args:
        model (nn.Module): from :func:`init_model`.
        volume (str | ndarray): an mmsam volume ``.npz`` (``image`` (D, H, W); 3D models also
            read ``spacing`` and, when present, ``native_shape`` through the config's test
            pipeline) or a (D, H, W) array: intensities in [0, 1] for 2D models (as mmsam
            stores them), the raw intensities the config's test pipeline normalises for 3D ones.
        batch_size (int): slices per forward pass (2D models).
        progress (bool): show a progress bar (slices or windows) on stderr.
        intensity_properties (dict, optional): 3D models' CT statistics (``meta.json``'s
            ``ct_foreground``); default: those of the config's data root.
        **scan_options: for scan files, ``intensity``, ``window``, ``boxes``, ``max_voxels``
            of ``inference_scan``.

    Returns:
        ndarray: (D, H, W) uint8 class ids (3D models: on the file's ``native_shape``).
    """
    if isinstance(volume, str) and scan_kind(volume) is not None:
        return inference_scan(model, volume, batch_size=batch_size, progress=progress,
                              intensity_properties=intensity_properties, **scan_options).labels
    if scan_options:
        raise TypeError(f'inference_volume: {sorted(scan_options)} are options of scan files '
                        '(NIfTI, DICOM, MetaImage), not of .npz files or arrays')
    if is_volume_model(model):
        return sliding_window_labels(model, prepare_volume(model, volume, intensity_properties),
                                      progress)
    where = volume if isinstance(volume, str) else 'the volume'
    if isinstance(volume, str):
        volume = load_npz(volume, keys=('image', ))['image']
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f'{where}: expected a (D, H, W) volume, got shape {volume.shape}')
    samples = inference_model(model, list(volume), batch_size=batch_size, progress=progress)
    return np.stack([s.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8) for s in samples])

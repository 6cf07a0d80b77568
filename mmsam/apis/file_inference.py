"""Inputs of ``tools/infer.py`` other than scans: image files, mmsam slice / volume ``.npz``
files and multi-annotator ``.npz`` samples, read, checked and packed for a model, and the
pictures drawn of their predictions. (Scans: :mod:`mmsam.apis.scan_inference`.)"""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from mmsam.datasets.io.npz import load_npz, npz_array_shape
from mmsam.datasets.io.scan import scan_kind
from mmsam.registry import DATASETS, TRANSFORMS
from mmsam.visualization.hypothesis_visualizer import HypothesisVisualizer
from mmsam.visualization.slice_choice import choose_slices, slice_scores
from mmsam.visualization.slice_overlay import (display_slice, render_slice_comparison,
                                               volume_display_range)
from mmsam.utils.io import atomic_savez, atomic_write_png
from .inference import (config_test_pipeline, inference_model, is_loading, is_volume_model,
                        npz_keys, pack_slice, slice_pipeline, training_data_meta)
from .prompts import command_line_prompts, points_for
from .scan_inference import inference_volume

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def read_image(path: str) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (gray files come as 3 equal channels).

    Raises:
        ValueError: not a readable image.
    """
    with open(path, 'rb') as f:
        image = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError('not a readable image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def unique_names(paths: Sequence[str]) -> List[str]:
    """Output names: each file's basename without extension, numbered when repeated."""
    names, seen = [], {}
    for path in paths:
        name = osp.splitext(osp.basename(path))[0]
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f'{name}_{seen[name]}')
    return names


def read_ct_statistics(meta_file: str) -> dict:
    """The ``ct_foreground`` statistics of a training data ``meta.json``.

    Raises:
        ValueError: not a meta.json, or one without the statistics.
    """
    try:
        with open(meta_file) as f:
            props = json.load(f).get('ct_foreground')
    except (OSError, ValueError, AttributeError) as err:
        raise ValueError(f'{meta_file}: not a meta.json ({err})') from err
    if props is None:
        raise ValueError(f'{meta_file} has no ct_foreground statistics')
    return props


def class_names_and_palette(model: nn.Module,
                            cfg: Config) -> Tuple[List[str], Optional[list]]:
    """Class names (index 0 background) and colours: the checkpoint's, the training data's
    ``meta.json``, or the test dataset class's."""
    for meta in (getattr(model, 'dataset_meta', None) or {}, training_data_meta(cfg)):
        if meta.get('classes'):
            return list(meta['classes']), meta.get('palette')
    dataset_type = cfg.get('test_dataloader', {}).get('dataset', {}).get('type')
    dataset_cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else None
    metainfo = getattr(dataset_cls, 'METAINFO', {}) or {}
    if metainfo.get('classes'):
        return list(metainfo['classes']), metainfo.get('palette')
    return ['background'] + [f'class {i}' for i in range(1, model.num_classes)], None


# Multi-hypothesis models: a box-prompted sample or image -> one grid picture ---------------
def prepare_npz(path: str, steps: list,
                box: Optional[np.ndarray] = None) -> Tuple[dict, np.ndarray]:
    """A multi-annotator ``.npz`` sample through the config's whole test pipeline.

    Args:
        path (str): the sample file.
        steps (list): (transform config, transform) of the test pipeline, loading included.
        box (ndarray, optional): (4,) replaces the box drawn from the annotations.

    Returns:
        tuple[dict, ndarray]: the packed inputs and the loaded image (before any resize).
    """
    results, loaded = dict(img_path=path, seg_fields=[], reduce_zero_label=False), None
    for transform_cfg, transform in steps:
        if loaded is None and not is_loading(transform_cfg):
            loaded = results['img'].copy()  # the image before resizing: what is drawn
        results = transform(results)
        if results is None:
            raise ValueError(f'the test pipeline step {transform_cfg["type"]} dropped the '
                             'sample')
    if box is not None:
        results['data_samples'].set_metainfo(dict(prompt_box=box))
    return results, loaded


def prepare_image(path: str, steps: list, box: np.ndarray) -> Tuple[dict, np.ndarray]:
    """An image file with its box, packed as the test pipeline does after loading.

    Args:
        path (str): the image file.
        steps (list): from :func:`slice_pipeline`.
        box (ndarray): (4,) x0, y0, x1, y1 in pixels of the image.

    Returns:
        tuple[dict, ndarray]: the packed inputs and the (H, W, 3) uint8 RGB image.
    """
    image = read_image(path)
    height, width = image.shape[:2]
    if box[2] > width - 1 or box[3] > height - 1:
        raise ValueError(f'--box {" ".join(f"{v:g}" for v in box)} lies outside the '
                         f'{width} x {height} image (x1 <= {width - 1}, y1 <= {height - 1})')
    return pack_slice(steps, image.astype(np.float32), box, where=path), image


def hypothesis_inputs(cfg: Config, paths: List[str], box: Optional[Sequence[float]] = None,
                      points: Optional[Sequence[float]] = None
                      ) -> List[Tuple[dict, np.ndarray]]:
    """Read and pack every multi-hypothesis input before a model is built.

    Args:
        cfg (Config): the model's config.
        paths (list[str]): ``.npz`` samples and image files (images need ``box``).
        box (Sequence[float], optional): the box prompt (replaces the samples' own).
        points (Sequence[float], optional): clicks, flat groups of 4 numbers (x, y, z, label)
            with z = 0, checked against each image's size and put into its packed sample's
            ``prompt_points`` (N, 2) / ``prompt_point_labels`` (N,).

    Returns:
        list[tuple[dict, ndarray]]: per input, the packed inputs and the image to draw.

    Raises:
        ValueError: naming the file.
    """
    npz_steps = [(t, TRANSFORMS.build(t)) for t in config_test_pipeline(cfg)]
    image_steps = slice_pipeline(cfg)
    box = None if box is None else np.asarray(box, dtype=np.float32)
    inputs = []
    for path in paths:
        if not path.lower().endswith('.npz') and box is None:
            raise ValueError(f'image {path} has no annotations to draw a box prompt from: give '
                             'the box with --box X0 Y0 X1 Y1 (pixels of the image)')
        try:
            if path.lower().endswith('.npz'):
                inputs.append(prepare_npz(path, npz_steps, box))
            else:
                inputs.append(prepare_image(path, image_steps, box))
        except (OSError, KeyError, ValueError) as err:
            message = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
            raise ValueError(f'image {path}: {message}') from err
    add_image_clicks(paths, inputs, points)
    return inputs


def add_image_clicks(paths: Sequence[str], inputs: List[Tuple[dict, np.ndarray]],
                     points: Optional[Sequence[float]]) -> None:
    """Put clicks (flat groups of 4 numbers x, y, z = 0, label) into each packed 2D input's
    prompts, checked against its (H, W) size; nothing without ``points``.

    Raises:
        PromptError: a click outside an image or off slice 0 (the message names the file).
    """
    clicks = command_line_prompts(None, None, points)
    if clicks is None:
        return
    for path, (packed, image) in zip(paths, inputs):
        coords, labels = points_for(clicks, path, (1, ) + tuple(image.shape[:2]))[0]
        packed['data_samples'].set_metainfo(dict(prompt_points=coords,
                                                 prompt_point_labels=labels))


def check_input_paths(paths: Sequence[str]) -> None:
    """Check that every input exists and is of a kind ``tools/infer.py`` reads: a scan
    (NIfTI, MetaImage, DICOM series folder), an ``.npz`` or an image (:data:`IMAGE_SUFFIXES`).

    Raises:
        FileNotFoundError: a missing input (named).
        ValueError: an unsupported file type (named, with the types that work).
    """
    for path in paths:
        if scan_kind(path) is not None:
            if not osp.exists(path):
                raise FileNotFoundError(f'input {path}: no such file or folder')
            continue
        if not osp.isfile(path):
            raise FileNotFoundError(f'image {path}: no such file')
        suffix = osp.splitext(path)[1].lower()
        if suffix != '.npz' and suffix not in IMAGE_SUFFIXES:
            raise ValueError(f'image {path}: unsupported type {suffix!r}; give a scan (.nii, '
                             '.nii.gz, .mha, .mhd, a DICOM series folder), an .npz (mmsam '
                             f'slice, volume or multi-annotator sample) or an image '
                             f'({", ".join(IMAGE_SUFFIXES)})')


def hypothesis_visualizer(cfg: Config) -> HypothesisVisualizer:
    """A HypothesisVisualizer with the config's visualizer options when it configures one."""
    options = {}
    vis_cfg = cfg.get('visualizer')
    if vis_cfg is not None and vis_cfg.get('type') in ('HypothesisVisualizer',
                                                        HypothesisVisualizer):
        options = {k: v for k, v in vis_cfg.items()
                   if k not in ('type', 'name', 'vis_backends', 'save_dir')}
    return HypothesisVisualizer(name='infer_visualizer', **options)


@torch.no_grad()
def draw_hypotheses(model: nn.Module, visualizer: HypothesisVisualizer, name: str, packed: dict,
                    image: np.ndarray, out_file: str) -> str:
    """Run a multi-hypothesis model on one packed input and draw its grid to ``out_file``.

    Raises:
        ValueError: the model gives no ``pred_hypotheses``.
    """
    (sample, ) = model.test_step(dict(inputs=[packed['inputs']],
                                      data_samples=[packed['data_samples']]))
    sample = sample.cpu()
    if 'pred_hypotheses' not in sample:
        raise ValueError('the model gives no pred_hypotheses; infer.py draws multi-hypothesis '
                         'segmentors (model.type=MultiHypothesisSegmentor)')
    visualizer.add_datasample(name, np.clip(image, 0, 255).astype(np.uint8), sample,
                              out_file=out_file)
    return out_file


# Semantic models: images, slices and volumes -> label maps and pictures ------------------
def describe_input(path: str, volume_model: bool) -> Tuple[str, tuple]:
    """What an input is, read from its header: ('image' | 'slice' | 'volume', shape).

    Raises:
        ValueError: the file cannot be read, or is not what the model takes.
    """
    if not path.lower().endswith('.npz'):
        if volume_model:
            raise ValueError('a 2D image, but the 3D model (VolumeSAMSegmentor) segments '
                             'volumes: give an mmsam volume .npz (image (D, H, W), spacing)')
        image = read_image(path)
        return 'image', image.shape[:2]
    keys = npz_keys(path)
    if 'image' not in keys:
        raise ValueError(f'no array named image (it has {", ".join(keys) or "none"}); mmsam '
                         'slices and volumes hold image (H, W) or (D, H, W) [and label]')
    shape = tuple(int(s) for s in npz_array_shape(path, 'image'))
    if len(shape) == 3 and volume_model and 'spacing' not in keys:
        raise ValueError('no spacing array: the 3D test pipeline (LoadVolume) needs the voxel '
                         'size (z, y, x) in mm; add spacing=(1., 1., 1.) if unknown')
    if len(shape) == 2:
        if volume_model:
            raise ValueError(f'a 2D slice {shape}, but the 3D model (VolumeSAMSegmentor) '
                             'segments volumes: give an mmsam volume .npz (image (D, H, W))')
        return 'slice', shape
    if len(shape) == 3:
        return 'volume', shape
    raise ValueError(f'image has shape {shape}; expected (H, W) (a slice) or (D, H, W) '
                     '(a volume)')


def segment_2d(model: nn.Module, kind: str, path: str, batch_size: int
               ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """(display image (H, W, 3) uint8, ground truth or None, prediction (H, W) uint8)."""
    if kind == 'image':
        image = read_image(path)
        sample = inference_model(model, image.astype(np.float32), batch_size=batch_size)
        gt = None
    else:
        data = load_npz(path, keys=('image', 'label') if 'label' in npz_keys(path) else
                        ('image', ))
        sample = inference_model(model, data['image'], batch_size=batch_size)
        image = display_slice(data['image'], 0.0, 1.0)
        gt = data.get('label')
    pred = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
    return image, gt, pred


def volume_pictures(name: str, image: np.ndarray, gt: Optional[np.ndarray], pred: np.ndarray,
                    classes: Sequence[str], palette: Optional[list], num: int,
                    volume_model: bool) -> List[Tuple[int, np.ndarray]]:
    """(slice index, picture) of the ``num`` slices with the most classes of a volume."""
    if num == 0:
        return []
    if image.shape != pred.shape:  # a 3D model's prediction on the native grid
        image = torch.nn.functional.interpolate(
            torch.from_numpy(image.astype(np.float32))[None, None], size=pred.shape,
            mode='trilinear', align_corners=False)[0, 0].numpy()
    if gt is not None and gt.shape != pred.shape:
        gt = None
    low, high = volume_display_range(image) if volume_model else (0.0, 1.0)
    chosen_on = gt if gt is not None else pred
    chosen = choose_slices(slice_scores(chosen_on), range(pred.shape[0]), num,
                           depth=pred.shape[0])
    return [(k, render_slice_comparison(
        display_slice(image[k], low, high), None if gt is None else gt[k], pred[k], classes,
        palette, title=f'{name} slice {k} of {pred.shape[0]}')) for k in chosen]


def segment_file(model: nn.Module, path: str, kind: str, name: str, out_dir: str,
                 classes: List[str], palette: Optional[list], batch_size: int = 8,
                 pictures: int = 2, intensity_properties: Optional[dict] = None) -> List[str]:
    """Segment one image, slice or volume file with a semantic model and write its outputs.

    2D (``kind`` 'image' or 'slice'): ``NAME_pred.png`` (uint8 class ids at the input's size)
    and ``NAME.png`` (the prediction over the image, beside the ground truth when the file has
    a label). Volumes: ``NAME_pred.npz`` (``pred`` (D, H, W) uint8 and ``spacing``) and
    ``pictures`` pictures ``NAME_slice<KKK>.png``.

    Args:
        model: from :func:`init_model` (or the ONNX runner), a 2D or 3D semantic model.
        path (str): the input; ``kind`` from :func:`describe_input`.
        name (str): the outputs' name; ``out_dir`` their folder.
        classes (list[str]), palette (list | None): for the pictures.
        batch_size (int): slices per forward pass (2D models on volumes).
        pictures (int): slices drawn of a volume.
        intensity_properties (dict, optional): 3D models' CT statistics.

    Returns:
        list[str]: the paths written.
    """
    volume_model = is_volume_model(model)
    if kind in ('image', 'slice'):
        image, gt, pred = segment_2d(model, kind, path, batch_size)
        return [atomic_write_png(osp.join(out_dir, f'{name}_pred.png'), pred),
                atomic_write_png(osp.join(out_dir, f'{name}.png'), render_slice_comparison(
                    image, gt, pred, classes, palette, title=name))]
    pred = inference_volume(model, path, batch_size=batch_size, progress=True,
                            intensity_properties=intensity_properties)
    keys = npz_keys(path)
    data = load_npz(path, keys=tuple(k for k in ('image', 'label', 'native_label', 'spacing',
                                                 'native_spacing') if k in keys))
    spacing = data.get('native_spacing', data.get('spacing'))
    out = osp.join(out_dir, f'{name}_pred.npz')
    atomic_savez(out, pred=pred, **({} if spacing is None else dict(spacing=spacing)))
    written = [out]
    gt = data.get('native_label', data.get('label'))
    for k, picture in volume_pictures(name, data['image'], gt, pred, classes, palette, pictures,
                                      volume_model):
        written.append(atomic_write_png(osp.join(out_dir, f'{name}_slice{k:03d}.png'),
                                        picture))
    return written

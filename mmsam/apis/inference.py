"""Building a trained model from a config and running it on arrays or files (2D slices, 3D volumes).

- :func:`inference_model`: 2D images -> ``SegDataSample`` s (any 2D segmentor of ``configs/``).
- :func:`prepare_volume` and :func:`sliding_window_labels`: a 3D ``VolumeSAMSegmentor`` on a
  volume loaded and normalised by the config's test pipeline (``inference_volume`` in
  :mod:`mmsam.apis.scan_inference` dispatches arrays, ``.npz`` files and scans).
"""
import math
import os.path as osp
import sys
import zipfile
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from mmseg.structures import SegDataSample

from mmsam.datasets.io.data_root import META_FILE, read_meta
from mmsam.engine import checkpoint_must_fit, config_argument_errors, load_checkpoint
from mmsam.models.segmentors import MultiHypothesisSegmentor, VolumeSAMSegmentor
from mmsam.models.utils.sliding_window_3d import compute_window_steps
from mmsam.registry import MODELS, TRANSFORMS


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a segmentor from a config and load a checkpoint written by ``tools/train.py``.

    SAM weight files named in the config are not read: the trained checkpoint holds all
    weights.

    Args:
        config (str | Config): config file or object.
        checkpoint (str, optional): work-dir checkpoint; random weights when None.
        device (str): e.g. ``'cpu'`` or ``'cuda:0'``.
        cfg_options (dict, optional): overrides merged into the config.

    Returns:
        nn.Module: the model in eval mode, with ``cfg`` and ``dataset_meta`` set.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmsam'))
    with config_argument_errors(cfg):
        model = MODELS.build(cfg.model)
    if checkpoint is not None:
        with checkpoint_must_fit(checkpoint, config if isinstance(config, str) else 'the config'):
            loaded = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
        meta = loaded.get('meta', {})
        model.dataset_meta = meta.get('dataset_meta')
    model.cfg = cfg
    return model.to(device).eval()


def _to_hwc(image):
    """(H, W) intensities in [0, 1] -> (H, W, 3) float32 in 0-255; (H, W, 3) is taken as 0-255."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = np.repeat(image[..., None] * 255.0, 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f'expected an (H, W) slice in [0, 1] or an (H, W, 3) image, got '
                         f'shape {image.shape}')
    return image


# Test-pipeline steps that read a sample file's annotations: arrays given to the apis skip them
# (and the loading steps: the image is given).
ANNOTATION_STEPS = ('BoxPromptFromAnnotation', )


def slice_pipeline(cfg: Config) -> List[Tuple[dict, Callable]]:
    """The config's 2D test pipeline without its loading and annotation steps, built.

    Returns:
        list[tuple[dict, callable]]: (transform config, transform).
    """
    steps = []
    for t in config_test_pipeline(cfg):
        if is_loading(t) or t['type'] in ANNOTATION_STEPS:
            continue
        steps.append((t, TRANSFORMS.build(t)))
    return steps


def pack_slice(steps: list, image: np.ndarray, box: Optional[Sequence[float]] = None,
               where: str = 'slice') -> dict:
    """Pack one 2D image as the config's test pipeline does after loading: the geometry
    (resizing, padding) is then the model's data preprocessor's, as in ``tools/test.py``.

    Args:
        steps (list): from :func:`slice_pipeline`.
        image (ndarray): (H, W) float in [0, 1] or (H, W, 3) in 0-255.
        box (Sequence[float], optional): (x0, y0, x1, y1) box prompt, pixels of the image.
        where (str): the image's name in errors and in ``img_path``.

    Returns:
        dict: ``inputs`` (3, h, w) tensor and ``data_samples``.
    """
    image = _to_hwc(image)
    shape = image.shape[:2]
    results = dict(img_path=where, img=image, img_shape=shape, ori_shape=shape, seg_fields=[],
                   reduce_zero_label=False)
    if box is not None:
        results['prompt_box'] = np.asarray(box, dtype=np.float32)
    for t, step in steps:
        results = step(results)
        if results is None:
            raise ValueError(f'{where}: the test pipeline step {t["type"]} dropped the image')
    return results


def model_input_size(model: nn.Module) -> Optional[Tuple[int, int]]:
    """The (H, W) a 2D model's encoder takes (its ``img_size``), or None when it takes any."""
    size = getattr(getattr(model, 'backbone', None), 'img_size', None)
    if size is None:
        size = getattr(getattr(model, 'data_preprocessor', None), 'size', None)
    if size is None:
        return None
    return (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)


def is_volume_model(model: nn.Module) -> bool:
    """Whether ``model`` segments whole volumes itself (3D, sliding window)."""
    return isinstance(model, VolumeSAMSegmentor)


def is_hypothesis_model(model: nn.Module) -> bool:
    """Whether ``model`` answers a box with M hypotheses (``MultiHypothesisSegmentor``, or
    the ONNX runner of one)."""
    return isinstance(model, MultiHypothesisSegmentor) or getattr(model, 'kind', None) == \
        'hypotheses'


def model_kind(cfg: Config) -> str:
    """What a config builds, before building it: ``'hypotheses'``
    (``MultiHypothesisSegmentor``), ``'volume'`` (``VolumeSAMSegmentor``) or ``'semantic'``."""
    model_type = cfg.model.get('type')
    cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if isinstance(cls, type) and issubclass(cls, MultiHypothesisSegmentor):
        return 'hypotheses'
    if isinstance(cls, type) and issubclass(cls, VolumeSAMSegmentor):
        return 'volume'
    return 'semantic'


def _progress(total, enabled):
    """An mmengine progress bar on stderr (stdout keeps the tools' output), or None."""
    return ProgressBar(total, file=sys.stderr) if enabled and total > 1 else None


def predict_in_batches(model: nn.Module, batches: Iterable[Tuple[list, list]], total: int,
                       progress: bool) -> List[SegDataSample]:
    """``model.predict`` over ``batches`` of ``(inputs, data_samples)`` lists, preprocessed by
    the model's data preprocessor, with one progress bar for the ``total`` items.

    Returns:
        list[SegDataSample]: the predictions, in order.
    """
    bar = _progress(total, progress)
    results = []
    for inputs, samples in batches:
        data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
        results += model.predict(data['inputs'], data['data_samples'])
        if bar is not None:
            for _ in inputs:
                bar.update()
    if bar is not None:
        sys.stderr.write('\n')
    return results


@torch.no_grad()
def inference_model(model: nn.Module, images: Union[np.ndarray, List[np.ndarray]],
                    batch_size: int = 8,
                    progress: bool = False) -> Union[SegDataSample, List[SegDataSample]]:
    """Segment 2D images.

    Each image goes through the config's test pipeline (without its loading steps) and the
    model's data preprocessor, exactly as ``tools/test.py`` feeds its slices: the same resizing
    or padding into the input frame and the same crop and resize back, so ``pred_sem_seg`` has
    each image's own (H, W).

    Args:
        model (nn.Module): from :func:`init_model` (``model.cfg`` set), a 2D segmentor.
        images (ndarray | list[ndarray]): (H, W) slices in [0, 1] (as mmsam stores them) or
            (H, W, 3) images in 0-255.
        batch_size (int): images per forward pass.
        progress (bool): show a progress bar (per image) on stderr.

    Returns:
        SegDataSample | list[SegDataSample]: with ``pred_sem_seg`` (1, H, W) and
        ``seg_logits``; a single sample for a single image.
    """
    if is_volume_model(model):
        raise ValueError(f'{type(model).__name__} segments (D, H, W) volumes: use '
                         'inference_volume')
    single = isinstance(images, np.ndarray) and images.ndim == 2 or (
        isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[-1] == 3)
    images = [images] if single else list(images)
    steps = slice_pipeline(model.cfg)

    def batches():
        for start in range(0, len(images), batch_size):
            packed = [pack_slice(steps, img, where=f'image {start + i}')
                      for i, img in enumerate(images[start:start + batch_size])]
            yield [p['inputs'] for p in packed], [p['data_samples'] for p in packed]

    results = predict_in_batches(model, batches(), len(images), progress)
    return results[0] if single else results


def npz_keys(path: str) -> List[str]:
    """The array names of an ``.npz`` file (without reading the arrays)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [name[:-4] for name in archive.namelist() if name.endswith('.npy')]
    except (OSError, zipfile.BadZipFile) as err:
        raise OSError(f'cannot read {path} ({err}): not an .npz file') from err


def config_test_pipeline(cfg: Config) -> List[dict]:
    """The config's test pipeline: a list of transform dicts (copies)."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
    if pipeline is None:
        pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        raise ValueError('the config has neither test_dataloader.dataset.pipeline nor '
                         'test_pipeline')
    return [dict(t) for t in pipeline]


def is_loading(transform_cfg: dict) -> bool:
    """Whether a pipeline step reads a file (``Load...``): arrays given to the apis skip it."""
    return str(transform_cfg.get('type')).startswith('Load')


def training_data_meta(cfg: Config) -> dict:
    """``meta.json`` of the config's test data root (classes, palette, CT statistics), or {}."""
    data_root = cfg.get('test_dataloader', {}).get('dataset', {}).get('data_root')
    if data_root and osp.isfile(osp.join(data_root, META_FILE)):
        return read_meta(data_root)
    return {}


def volume_test_pipeline(cfg: Config, with_label: bool = True,
                         loading: bool = True) -> List[Tuple[dict, Callable]]:
    """The config's test pipeline, built; its loading step told whether to read a label.

    Args:
        cfg (Config): a 3D config (``LoadVolume`` ... ``PackVolumeInputs``).
        with_label (bool): whether the files hold a ``label``.
        loading (bool): keep the loading steps (False: the volume is given as an array).

    Returns:
        list[tuple[dict, callable]]: (transform config, transform).
    """
    steps = []
    for transform_cfg in config_test_pipeline(cfg):
        if is_loading(transform_cfg):
            if not loading:
                continue
            if transform_cfg.get('type') == 'LoadVolume':
                transform_cfg['with_label'] = with_label
        steps.append((transform_cfg, TRANSFORMS.build(transform_cfg)))
    return steps


def _intensity_info(model, intensity_properties):
    """``intensity`` and ``intensity_properties`` for ``NormalizeIntensity3D``: the given
    statistics, else those of the training data's ``meta.json`` (``ct_foreground``)."""
    meta = training_data_meta(model.cfg)
    props = intensity_properties if intensity_properties is not None else \
        meta.get('ct_foreground')
    return dict(intensity=meta.get('intensity'), intensity_properties=props)


def _run_pipeline(steps, results, where, cfg):
    """Apply built transforms; errors name the input and the step."""
    for transform_cfg, transform in steps:
        try:
            results = transform(results)
        except (KeyError, ValueError) as err:
            hint = ''
            if 'intensity_properties' in str(err) or 'ct_foreground' in str(err):
                data_root = cfg.get('test_dataloader', {}).get('dataset', {}).get('data_root')
                hint = (f' For inference the statistics come from the training data\'s '
                        f'meta.json ({osp.join(str(data_root), META_FILE)}, the config\'s '
                        'test data root): set that data root with --cfg-options, or give the '
                        'file with tools/infer.py --data-meta META.json '
                        '(inference_volume(..., intensity_properties=...)).')
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise ValueError(f'{where}: test pipeline step {transform_cfg["type"]}: '
                             f'{message}{hint}') from err
        if results is None:
            raise ValueError(f'{where}: the test pipeline step {transform_cfg["type"]} dropped '
                             'the sample')
    return results


def prepare_volume(model: nn.Module, volume: Union[str, np.ndarray],
                   intensity_properties: Optional[dict] = None,
                   spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict:
    """Load (a path) and normalise a volume as the config's test pipeline does, for a 3D model.

    Args:
        model (nn.Module): a :class:`VolumeSAMSegmentor` from :func:`init_model`.
        volume (str | ndarray): an mmsam volume ``.npz`` (``image`` (D, H, W), ``spacing``,
            optional ``label``) or a (D, H, W) array of the raw intensities the files hold.
        intensity_properties (dict, optional): CT statistics for ``NormalizeIntensity3D``
            (``meta.json``'s ``ct_foreground``); default: the config's data root's.

    Returns:
        dict: ``inputs`` (C, D, H, W) tensor and ``data_samples`` (with ``native_shape``).
    """
    info = _intensity_info(model, intensity_properties)
    if isinstance(volume, str):
        with_label = 'label' in npz_keys(volume)
        steps = volume_test_pipeline(model.cfg, with_label=with_label)
        results = dict(img_path=volume, num_classes=model.num_classes, seg_fields=[],
                       case_id=osp.splitext(osp.basename(volume))[0], **info)
        return _run_pipeline(steps, results, volume, model.cfg)
    image = np.asarray(volume, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f'expected a (D, H, W) volume, got shape {image.shape}')
    shape = tuple(int(s) for s in image.shape)
    spacing = tuple(float(s) for s in spacing)
    results = dict(img=image, spacing=spacing, native_spacing=spacing,
                   ori_shape=shape, img_shape=shape, native_shape=shape, seg_fields=[],
                   case_id='volume', **info)
    return _run_pipeline(volume_test_pipeline(model.cfg, loading=False), results,
                         'the volume', model.cfg)


def num_window_calls(model: nn.Module, shape: Sequence[int]) -> int:
    """Forward passes the sliding window of a 3D model makes over a (D, H, W) volume."""
    cfg = model.test_cfg
    patch = cfg['patch_size']
    padded = [max(s, p) for s, p in zip(shape, patch)]
    windows = math.prod(len(s) for s in compute_window_steps(padded, patch, cfg['step_size']))
    return math.ceil(windows / cfg['window_batch']) * 2 ** len(tuple(cfg['mirror_axes']))


@torch.no_grad()
def sliding_window_labels(model: nn.Module, packed: dict, progress: bool) -> np.ndarray:
    bar = _progress(num_window_calls(model, tuple(packed['inputs'].shape[-3:])), progress)
    if bar is not None:
        window_scores = model.window_scores

        def counted(windows):
            out = window_scores(windows)
            bar.update()
            return out

        model.window_scores = counted  # the bound method VolumeSAMSegmentor.predict calls
    try:
        (sample, ) = model.test_step(dict(inputs=[packed['inputs']],
                                          data_samples=[packed['data_samples']]))
    finally:
        if bar is not None:
            del model.window_scores
            sys.stderr.write('\n')
    return sample.pred_sem_seg.data.cpu().numpy().astype(np.uint8)

"""Building a trained model from a config and running it on arrays (2D slices or 3D volumes)."""
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

from mmsam.engine import checkpoint_must_fit, config_argument_errors, load_checkpoint
from mmsam.registry import MODELS


def init_model(config, checkpoint=None, device='cpu', cfg_options=None):
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


def _to_chw(image):
    """(H, W) intensities in [0, 1] -> (3, H, W) in 0-255; (H, W, 3) is taken as 0-255."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = np.repeat(image[..., None] * 255.0, 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f'expected an (H, W) slice in [0, 1] or an (H, W, 3) image, got '
                         f'shape {image.shape}')
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


@torch.no_grad()
def inference_model(model, images, batch_size=8):
    """Segment 2D images.

    Args:
        model (nn.Module): from :func:`init_model`.
        images (ndarray | list[ndarray]): (H, W) slices in [0, 1] (as mmsam stores them) or
            (H, W, 3) images in 0-255.
        batch_size (int): images per forward pass.

    Returns:
        SegDataSample | list[SegDataSample]: with ``pred_sem_seg`` (1, H, W) and
        ``seg_logits``; a single sample for a single image.
    """
    single = isinstance(images, np.ndarray) and images.ndim == 2 or (
        isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[-1] == 3)
    images = [images] if single else list(images)
    results = []
    for start in range(0, len(images), batch_size):
        inputs = [_to_chw(img) for img in images[start:start + batch_size]]
        samples = []
        for x in inputs:
            sample = SegDataSample()
            sample.set_metainfo(dict(img_shape=tuple(x.shape[1:]), ori_shape=tuple(x.shape[1:])))
            samples.append(sample)
        data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
        results += model.predict(data['inputs'], data['data_samples'])
    return results[0] if single else results


def inference_volume(model, volume, batch_size=8):
    """Segment a 3D volume slice by slice.

    Args:
        model (nn.Module): from :func:`init_model`.
        volume (ndarray): (D, H, W) intensities in [0, 1].
        batch_size (int): slices per forward pass.

    Returns:
        ndarray: (D, H, W) uint8 class ids.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f'expected a (D, H, W) volume, got shape {volume.shape}')
    samples = inference_model(model, list(volume), batch_size=batch_size)
    return np.stack([s.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8) for s in samples])

"""Resizing every slice of a volume to the network's square input, prompts scaled along."""
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS
from .volume_transform_utils import update_shape

BOX_KEYS = ('prompt_box', 'prompt_boxes')


@TRANSFORMS.register_module()
class ResizeSlices(BaseTransform):
    """Resize the (H, W) of every slice of ``img`` to ``size`` x ``size``; depth unchanged.

    The image is resized bicubically with antialiasing (as MedSAM2 resizes each slice with
    PIL) and clipped to its former range; labels in ``seg_fields`` by nearest neighbour when
    ``resize_labels`` (training; test pipelines keep the metric's label on its own grid). Box
    prompts (``prompt_box`` (4,), ``prompt_boxes`` (K, 4), x0 y0 x1 y1 pixels) are scaled by
    size / W and size / H, so they stay in pixels of the network input.

    Required keys: ``img`` (D, H, W) or (C, D, H, W).
    Modified keys: ``img``, ``img_shape``; ``seg_fields`` with ``resize_labels``; box prompts.
    Added keys: ``slice_scale`` (sy, sx).

    Args:
        size (int): the square input of the model (SAM 2's ``image_size``).
        resize_labels (bool): resize the ``seg_fields`` too. Default: True.
    """

    def __init__(self, size, resize_labels=True):
        if int(size) < 1:
            raise ValueError(f'ResizeSlices size must be >= 1, got {size}')
        self.size, self.resize_labels = int(size), bool(resize_labels)

    def transform(self, results):
        img = np.asarray(results['img'], np.float32)
        height, width = img.shape[-2:]
        if (height, width) != (self.size, self.size):
            flat = torch.from_numpy(np.ascontiguousarray(img.reshape(-1, 1, height, width)))
            out = F.interpolate(flat, size=(self.size, self.size), mode='bicubic',
                                align_corners=False, antialias=True)
            out = out.clamp(float(img.min()), float(img.max())) if img.size else out
            results['img'] = out.numpy().reshape(img.shape[:-2] + (self.size, self.size))
            if self.resize_labels:
                for field in results.get('seg_fields', []):
                    seg = results[field]
                    rows = np.minimum((np.arange(self.size) + 0.5) * height / self.size,
                                      height - 1).astype(int)
                    cols = np.minimum((np.arange(self.size) + 0.5) * width / self.size,
                                      width - 1).astype(int)
                    results[field] = seg[..., rows[:, None], cols[None, :]]
        scale = np.array([self.size / width, self.size / height] * 2, np.float32)
        for key in BOX_KEYS:
            if key in results:
                results[key] = (np.asarray(results[key], np.float32) * scale).astype(np.float32)
        results['slice_scale'] = (self.size / height, self.size / width)
        update_shape(results)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'resize_labels={self.resize_labels})')

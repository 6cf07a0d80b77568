"""Loading a 2D image with all of its annotators' masks (LIDC-IDRI, QUBIQ, synthetic lesions)."""
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS

from ..io.npz import load_npz


@TRANSFORMS.register_module()
class LoadMultiAnnotatorSample(BaseTransform):
    """Load ``image`` (H, W) and ``masks`` (K, H, W) from a multi-annotator ``.npz`` sample.

    With ``resize_to`` the sample is brought to that size right after loading (image bicubic,
    masks nearest), so everything downstream, the evaluation included, sees the resized sample
    as the loaded one (``ori_shape``): the official SeqSAM code works on QUBIQ at 256 x 256.

    Required keys: ``img_path``.
    Added keys: ``img`` (H, W, 3) float32 = intensity * ``intensity_scale``,
    ``gt_annotations`` (K, H, W) uint8 in {0, 1}, ``img_shape``, ``ori_shape``.

    Args:
        intensity_scale (float): stored intensities are in [0, 1]; SAM expects 0-255.
        channels (int): the gray image is repeated to this many channels.
        resize_to (tuple[int, int], optional): (H, W) to resize the sample to; None keeps it.
    """

    def __init__(self, intensity_scale=255.0, channels=3, resize_to=None):
        if resize_to is not None and (len(resize_to) != 2 or min(resize_to) < 1):
            raise ValueError(f'LoadMultiAnnotatorSample resize_to must be None or (H, W) with '
                             f'positive sizes, got {resize_to!r}')
        self.intensity_scale = intensity_scale
        self.channels = channels
        self.resize_to = None if resize_to is None else tuple(int(s) for s in resize_to)

    def transform(self, results):
        path = results['img_path']
        data = load_npz(path, keys=('image', 'masks'))
        image, masks = data['image'], data['masks']
        if image.ndim != 2 or masks.ndim != 3 or masks.shape[1:] != image.shape:
            raise ValueError(f'{path}: expected image (H, W) and masks (K, H, W), got '
                             f'{image.shape} and {masks.shape}')
        if masks.size and int(masks.max()) > 1:
            raise ValueError(f'{path}: masks must be 0/1, found value {int(masks.max())}; '
                             're-run the converter')
        image, masks = image.astype(np.float32), masks.astype(np.uint8)
        if self.resize_to is not None and image.shape != self.resize_to:
            size = self.resize_to[::-1]  # mmcv takes (w, h)
            image = np.clip(mmcv.imresize(image, size, interpolation='bicubic'), 0, 1)
            masks = np.stack([mmcv.imresize(m, size, interpolation='nearest') for m in masks])
        results['img'] = np.repeat(image[..., None] * self.intensity_scale, self.channels,
                                   axis=-1)
        results['gt_annotations'] = masks
        results['img_shape'] = results['ori_shape'] = image.shape
        return results

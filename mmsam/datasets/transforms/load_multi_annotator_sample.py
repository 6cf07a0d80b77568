"""Loading a 2D image with all of its annotators' masks (LIDC-IDRI, QUBIQ, synthetic lesions)."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS
from ..volume_io import load_npz


@TRANSFORMS.register_module()
class LoadMultiAnnotatorSample(BaseTransform):
    """Load ``image`` (H, W) and ``masks`` (K, H, W) from a multi-annotator ``.npz`` sample.

    Required keys: ``img_path``.
    Added keys: ``img`` (H, W, 3) float32 = intensity * ``intensity_scale``,
    ``gt_annotations`` (K, H, W) uint8 in {0, 1}, ``img_shape``, ``ori_shape``.

    Args:
        intensity_scale (float): stored intensities are in [0, 1]; SAM expects 0-255.
        channels (int): the gray image is repeated to this many channels.
    """

    def __init__(self, intensity_scale=255.0, channels=3):
        self.intensity_scale = intensity_scale
        self.channels = channels

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
        results['img'] = np.repeat(image.astype(np.float32)[..., None] * self.intensity_scale,
                                   self.channels, axis=-1)
        results['gt_annotations'] = masks.astype(np.uint8)
        results['img_shape'] = results['ori_shape'] = image.shape
        return results

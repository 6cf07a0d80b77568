"""Loading one 2D slice (image and label) from mmsam's slice/volume files."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS
from ..io.npz import load_npz


@TRANSFORMS.register_module()
class LoadNpzSlice(BaseTransform):
    """Load a slice as a 3-channel image and its label map, checking the label values.

    Reads ``results['img_path']``: a 2D slice file, or, when ``num_slices`` is present, slice
    ``slice_index`` of a 3D volume file (the last volume read is kept, so the slices of a
    volume cost one read).

    Required keys: ``img_path``, ``num_classes``; optional ``slice_index``, ``num_slices``.
    Added keys: ``img`` (H, W, 3) float32 = intensity * ``intensity_scale``, ``gt_seg_map``
    (H, W) uint8, ``seg_fields``, ``img_shape``, ``ori_shape``, ``spacing`` (volumes).

    Args:
        intensity_scale (float): stored intensities are in [0, 1]; SAM's pixel statistics
            expect 0-255.
        channels (int): the gray slice is repeated to this many channels.
    """

    def __init__(self, intensity_scale=255.0, channels=3):
        self.intensity_scale = intensity_scale
        self.channels = channels
        self._volume_path = None
        self._volume = None

    def _read(self, results):
        path = results['img_path']
        if 'num_slices' not in results:
            data = load_npz(path)
            return data['image'], data['label'], None
        if path != self._volume_path:
            self._volume = load_npz(path, keys=('image', 'label', 'spacing'))
            self._volume_path = path
        index = results['slice_index']
        image, label = self._volume['image'], self._volume['label']
        if not 0 <= index < image.shape[0]:
            raise IndexError(f'slice {index} requested from volume {path} of depth '
                             f'{image.shape[0]}; the split or the file changed: rebuild the data')
        return image[index], label[index], tuple(float(s) for s in self._volume['spacing'])

    def transform(self, results):
        image, label, spacing = self._read(results)
        path = results['img_path']
        where = path if 'num_slices' not in results else f'{path} slice {results["slice_index"]}'
        if image.ndim != 2 or label.shape != image.shape:
            raise ValueError(f'{where}: expected 2D image and label of one shape, got '
                             f'{image.shape} and {label.shape}')
        num_classes = results['num_classes']
        if label.size and int(label.max()) >= num_classes:
            raise ValueError(f'{where}: label value {int(label.max())} >= num_classes '
                             f'{num_classes}; the data has classes the config does not know. '
                             'Fix the converter/label map or the dataset classes.')
        img = np.repeat(image.astype(np.float32)[..., None] * self.intensity_scale,
                        self.channels, axis=-1)
        results['img'] = img
        results['gt_seg_map'] = label.astype(np.uint8)
        results['seg_fields'] = ['gt_seg_map']
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        if spacing is not None:
            results['spacing'] = spacing
        return results

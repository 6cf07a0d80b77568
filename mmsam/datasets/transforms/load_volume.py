"""Loading a whole 3D volume (image, label and geometry) from mmsam's volume files."""
import zipfile

import numpy as np
from mmcv.transforms import BaseTransform

from mmsam.registry import TRANSFORMS
from ..io.npz import load_npz


def _npz_keys(path):
    with zipfile.ZipFile(path) as archive:
        return {name[:-4] for name in archive.namelist() if name.endswith('.npy')}


@TRANSFORMS.register_module()
class LoadVolume(BaseTransform):
    """Load a (D, H, W) volume, its label map and spacing from ``results['img_path']``.

    The file holds ``image``, ``label`` and ``spacing`` (see :mod:`mmsam.datasets.io.data_root`)
    and, for resampled test volumes, ``native_label``, ``native_spacing`` and ``native_shape``.

    Required keys: ``img_path``; optional ``num_classes`` (label values are checked against it).

    Added keys: ``img`` (D, H, W) float32, ``gt_seg_map`` (D, H, W) uint8, ``seg_fields``,
    ``spacing`` (tuple of 3 floats, z y x mm), ``ori_shape`` = ``img_shape`` (D, H, W of the
    stored volume), ``native_shape`` (tuple of 3 ints: the grid the prediction is resampled to;
    ``ori_shape`` when the file has none) and ``native_spacing`` (``spacing`` when none).

    Args:
        native_label (bool): when the file has ``native_label``, put it in ``gt_seg_map``
            instead of the resampled label (test pipelines: the metric runs on the native
            grid). Spatial transforms refuse such a label. Default: False.
        with_label (bool): load the label; False for unlabelled volumes (inference).
    """

    def __init__(self, native_label=False, with_label=True):
        self.native_label = bool(native_label)
        self.with_label = bool(with_label)

    def transform(self, results):
        path = results['img_path']
        data = load_npz(path, keys=('image', 'spacing') + (('label', ) if self.with_label else ()))
        image = data['image']
        if image.ndim not in (3, 4):
            raise ValueError(f'{path}: image must be (D, H, W) or (C, D, H, W), got shape '
                             f'{image.shape}; re-run the converter for it')
        shape = tuple(int(s) for s in image.shape[-3:])
        optional = _npz_keys(path) & {'native_label', 'native_spacing', 'native_shape'}
        extra = load_npz(path, keys=tuple(sorted(optional))) if optional else {}
        spacing = tuple(float(s) for s in data['spacing'])
        results['img'] = image.astype(np.float32, copy=False)
        results['spacing'] = spacing
        results['ori_shape'] = results['img_shape'] = shape
        results['native_shape'] = tuple(int(s) for s in extra.get('native_shape', shape))
        results['native_spacing'] = tuple(float(s) for s in extra.get('native_spacing', spacing))
        results['seg_fields'] = []
        if not self.with_label:
            return results
        label = data['label']
        if label.shape != shape:
            raise ValueError(f'{path}: label shape {label.shape} differs from the image\'s '
                             f'{shape}; re-run the converter for it')
        if self.native_label and 'native_label' in extra:
            label = extra['native_label']
            if label.shape != results['native_shape']:
                raise ValueError(f'{path}: native_label shape {label.shape} differs from '
                                 f'native_shape {results["native_shape"]}; re-run the converter')
        num_classes = results.get('num_classes')
        if num_classes is not None and label.size and int(label.max()) >= num_classes:
            raise ValueError(f'{path}: label value {int(label.max())} >= num_classes '
                             f'{num_classes}; the data has classes the config does not know. '
                             'Fix the converter/label map or the dataset classes.')
        results['gt_seg_map'] = label.astype(np.uint8, copy=False)
        results['seg_fields'] = ['gt_seg_map']
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(native_label={self.native_label}, '
                f'with_label={self.with_label})')

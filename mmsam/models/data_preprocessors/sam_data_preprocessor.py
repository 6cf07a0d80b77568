"""SAMDataPreProcessor: one rule that puts every 2D image into the model's input frame, the same
in training, ``tools/test.py``, ``mmsam.apis`` / ``tools/infer.py`` and the ONNX runner."""
import torch.nn.functional as F
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.utils import stack_batch

from mmsam.registry import MODELS
from ..utils.ndimage_zoom import zoom_nearest, zoom_spline

FITS = ('pad', 'longest_side', 'resize')
INTERPOLATIONS = ('bilinear', 'spline')


@MODELS.register_module()
class SAMDataPreProcessor(SegDataPreProcessor):
    """mmseg's ``SegDataPreProcessor`` (channel order, mean/std) with the input geometry decided
    once, for training and testing alike.

    Each normalised (3, h, w) image is fitted to ``size`` (S_h, S_w) by ``fit``:

    - ``'pad'``: placed top-left and padded (bottom, right) with ``pad_val``, at its own scale
      (mmsam's slice converters store slices no larger than the input); an image larger than
      the frame is first shrunk as ``'longest_side'`` does;
    - ``'longest_side'``: scaled (bilinear) by min(S_h / h, S_w / w), the side lengths rounded
      as segment-anything's ``ResizeLongestSide`` does, then padded (SAM's own preprocessing);
    - ``'resize'``: scaled to exactly ``size`` (aspect ratio not kept), no padding.

    In training the ``gt_sem_seg`` map follows the image (nearest neighbour, padding
    ``seg_pad_val``). The metainfo records the geometry: ``img_shape`` (h', w') the image
    inside the frame and ``padding_size`` / ``img_padding_size`` (left, right, top, bottom),
    so ``BaseSegmentor.postprocess_result`` crops the padding and resizes the logits back to
    ``ori_shape`` (and box prompts scale by ``img_shape / ori_shape``). mmseg's class pads only
    in training unless ``test_cfg`` repeats the size; here there is no ``test_cfg``.

    Args:
        size (tuple[int, int]): (S_h, S_w), the encoder's input size.
        fit (str): ``'pad'``, ``'longest_side'`` or ``'resize'``.
        interpolation (str): how images are resized: ``'bilinear'`` (antialiased when
            shrinking; labels by ``F.interpolate`` nearest) or ``'spline'``
            (``scipy.ndimage.zoom(order=3)`` per channel, labels ``zoom(order=0)``, on the
            CPU: the official SAMed / H-SAM ``test_single_volume`` and datasets).
        via_size (tuple[int, int], optional): with ``fit='resize'``, resize to this size
            first, then to ``size`` (the official SAMed test's 512 -> 224 -> 512 round trip:
            ``via_size=(224, 224)``, ``size=(512, 512)``); an image already at ``via_size``
            skips the first step.
        **kwargs: ``mean``, ``std``, ``pad_val``, ``seg_pad_val``, ``bgr_to_rgb``,
            ``rgb_to_bgr``, ``batch_augments`` of ``SegDataPreProcessor``.
    """

    def __init__(self, size, fit='pad', interpolation='bilinear', via_size=None, **kwargs):
        for key in ('test_cfg', 'size_divisor'):
            if kwargs.get(key) is not None:
                raise ValueError(f'SAMDataPreProcessor: {key}={kwargs[key]!r} is not used: '
                                 f'size and fit apply in training and at test alike; remove '
                                 f'model.data_preprocessor.{key}')
            kwargs.pop(key, None)
        if fit not in FITS:
            raise ValueError(f'SAMDataPreProcessor: fit={fit!r}; expected one of {FITS}')
        size = (int(size), int(size)) if isinstance(size, (int, float)) else \
            tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'SAMDataPreProcessor: size={size}; expected (height, width)')
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'SAMDataPreProcessor: interpolation={interpolation!r}; '
                             f'expected one of {INTERPOLATIONS}')
        if via_size is not None:
            if fit != 'resize':
                raise ValueError(f'SAMDataPreProcessor: via_size={via_size} needs '
                                 f"fit='resize' (got fit={fit!r})")
            via_size = (int(via_size), int(via_size)) if isinstance(via_size, (int, float)) \
                else tuple(int(s) for s in via_size)
        super().__init__(size=size, **kwargs)
        self.fit = fit
        self.interpolation = interpolation
        self.via_size = via_size

    def fitted_shape(self, shape):
        """The (h', w') an (h, w) image has inside the (S_h, S_w) frame."""
        (h, w), (size_h, size_w) = shape, self.size
        if self.fit == 'resize':
            return size_h, size_w
        scale = min(size_h / h, size_w / w)
        if self.fit == 'pad' and scale >= 1:
            return h, w
        return min(int(h * scale + 0.5), size_h), min(int(w * scale + 0.5), size_w)

    def _fit(self, image, sample, training):
        shape = self.fitted_shape(tuple(image.shape[-2:]))
        steps = [shape] if self.via_size is None else [self.via_size, shape]
        if steps == [tuple(image.shape[-2:])]:
            return image
        follow = sample is not None and training and 'gt_sem_seg' in sample
        label = sample.gt_sem_seg.data if follow else None
        for step in steps:
            image, label = self._resize(image, label, step)
        if sample is not None:
            sample.set_metainfo(dict(img_shape=shape))
            if follow:
                del sample.gt_sem_seg.data
                sample.gt_sem_seg.data = label
        return image

    def _resize(self, image, label, shape):
        """(3, h, w) image and optional (1, h, w) label to ``shape`` by ``interpolation``."""
        if shape == tuple(image.shape[-2:]):
            return image, label
        if self.interpolation == 'spline':
            return zoom_spline(image, shape), None if label is None else zoom_nearest(
                label, shape)
        shrink = shape[0] < image.shape[-2] or shape[1] < image.shape[-1]
        image = F.interpolate(image[None], size=shape, mode='bilinear', align_corners=False,
                              antialias=shrink)[0]
        if label is not None:
            label = F.interpolate(label[None].float(), size=shape, mode='nearest')[0].to(
                label.dtype)
        return image, label

    def forward(self, data, training=False):
        """Normalise, fit and batch.

        Args:
            data (dict): ``inputs`` list of (3, h, w) images (any sizes), ``data_samples``.
            training (bool): whether ``gt_sem_seg`` follows the images.

        Returns:
            dict: ``inputs`` (B, 3, S_h, S_w) float and ``data_samples`` with the geometry in
            their metainfo.
        """
        data = self.cast_data(data)
        samples = data.get('data_samples')
        inputs = []
        for i, image in enumerate(data['inputs']):
            if self.channel_conversion and image.size(0) == 3:
                image = image[[2, 1, 0], ...]
            image = image.float()
            if self._enable_normalize:
                image = (image - self.mean) / self.std
            inputs.append(self._fit(image, None if samples is None else samples[i], training))
        if training:
            if samples is None:
                raise ValueError('SAMDataPreProcessor: training needs data_samples')
            inputs, samples = stack_batch(inputs, samples, size=self.size, pad_val=self.pad_val,
                                          seg_pad_val=self.seg_pad_val)
            if self.batch_augments is not None:
                inputs, samples = self.batch_augments(inputs, samples)
            return dict(inputs=inputs, data_samples=samples)
        inputs, padding = stack_batch(inputs, size=self.size, pad_val=self.pad_val)
        if samples is not None:
            for sample, info in zip(samples, padding):
                sample.set_metainfo(dict(padding_size=info['img_padding_size'], **info))
        return dict(inputs=inputs, data_samples=samples)


def check_train_test_geometry(preprocessor_cfg):
    """Refuse a 2D data preprocessor config whose training and test geometry differ.

    mmseg's ``SegDataPreProcessor`` pads to ``size`` in training only; at test time (and in
    inference) it passes images at their own size, unless ``test_cfg`` repeats ``size``. A
    model trained on padded slices then sees something else at test.

    Args:
        preprocessor_cfg (dict | None): ``model.data_preprocessor``.

    Raises:
        ValueError: names the setting and the fix.
    """
    if not isinstance(preprocessor_cfg, dict):
        return
    kind = preprocessor_cfg.get('type')
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not isinstance(cls, type) or not issubclass(cls, SegDataPreProcessor) or \
            issubclass(cls, SAMDataPreProcessor):
        return
    size = preprocessor_cfg.get('size')
    test_size = (preprocessor_cfg.get('test_cfg') or {}).get('size')
    normal = (lambda s: None if s is None else tuple(int(v) for v in (
        (s, s) if isinstance(s, (int, float)) else s)))
    if normal(size) != normal(test_size):
        raise ValueError(
            f'model.data_preprocessor: {cls.__name__} with size={size} and test_cfg size='
            f'{test_size} pads images to {size} in training but not the same way at test, so '
            "the model would see another geometry at test and inference: use type="
            "'SAMDataPreProcessor' (size and fit apply in training and at test alike)")

"""SAMSegmentor: image -> SAM encoder -> (neck) -> SAM decode head, as an mmseg segmentor."""
import difflib

import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor

from mmsam.registry import MODELS
from ..data_preprocessors import check_train_test_geometry
from ..utils.ndimage_zoom import zoom_nearest


@MODELS.register_module()
class SAMSegmentor(BaseSegmentor):
    """Runs a SAM image encoder once per image and hands its features to a SAM decode head.

    The head receives the data samples as well as the features, so prompts travel with the
    data (boxes, points) and heads stay free of file I/O. Predictions are upsampled to the
    network input and then, by ``BaseSegmentor.postprocess_result``, to each image's original
    shape. 3D volumes are handled slice by slice by the dataset and the volume metric.

    ``test_cfg=dict(label_resize='nearest')`` instead takes the argmax at the network's
    resolution and zooms the label map to the original shape by nearest neighbour, as
    ``scipy.ndimage.zoom(order=0)`` does (the official H-SAM/SAMed test of their 224-input
    models); ``seg_logits`` stay bilinearly resized.

    Args:
        backbone (dict): e.g. a :class:`SAMImageEncoder`.
        decode_head (dict): a :class:`SAMDecodeHead` subclass.
        neck (dict, optional): applied to the backbone features.
        train_cfg (dict, optional), test_cfg (dict, optional): passed to the head.
        data_preprocessor (dict, optional): a :class:`SAMDataPreProcessor` (one input geometry
            for training and test); an mmseg ``SegDataPreProcessor`` that pads in training
            but not at test is refused.
        init_cfg (dict, optional): mmengine init config.
    """

    #: the ``test_cfg`` keys this segmentor reads, and the values its ``mode`` may take
    TEST_CFG_KEYS = ('mode', 'label_resize')
    TEST_MODES = ('whole', )

    def __init__(self, backbone, decode_head, neck=None, train_cfg=None, test_cfg=None,
                 data_preprocessor=None, init_cfg=None):
        check_train_test_geometry(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.decode_head = MODELS.build(decode_head)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        self.train_cfg, self.test_cfg = train_cfg, test_cfg or {}
        self._check_test_cfg()
        self.embedding_cache = None

    def _check_test_cfg(self):
        """Refuse ``test_cfg`` keys nothing reads and modes this segmentor does not run."""
        name = type(self).__name__
        for key in self.test_cfg:
            if key not in self.TEST_CFG_KEYS:
                close = difflib.get_close_matches(key, self.TEST_CFG_KEYS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ''
                raise ValueError(f'{name}: model.test_cfg.{key} is read by nothing{hint}; the '
                                 f'keys are {", ".join(self.TEST_CFG_KEYS)}')
        mode = self.test_cfg.get('mode', self.TEST_MODES[0])
        if mode not in self.TEST_MODES:
            raise ValueError(f'{name}: model.test_cfg.mode={mode!r} is not supported; it runs '
                             f'{" or ".join(repr(m) for m in self.TEST_MODES)}')

    def extract_feat(self, inputs, data_samples=None):
        """Encode images: (B, 3, H, W) -> tuple of feature maps, the image embedding last.

        With an ``embedding_cache`` (set by ``EmbeddingCacheHook`` when the encoder is frozen)
        and the data samples (which name the images), the encoder runs only on images it has
        not seen; the neck always runs.
        """
        if self.embedding_cache is not None and data_samples is not None:
            feats = self.embedding_cache(self.backbone, inputs, data_samples)
        else:
            feats = self.backbone(inputs)
        return self.neck(feats) if self.with_neck else feats

    def head_inputs(self, inputs, data_samples=None):
        """What the head receives: the features, plus the (B, 3, H, W) image last when the head
        ``reads_image`` (e.g. ``PSAMHead`` with ``net_input='image'``)."""
        feats = self.extract_feat(inputs, data_samples)
        if getattr(self.decode_head, 'reads_image', False):
            return tuple(feats) + (inputs,)
        return feats

    def encode_decode(self, inputs, batch_data_samples):
        """Logits at the input size: (B, out_channels, H, W)."""
        logits = self.decode_head.predict(self.head_inputs(inputs, batch_data_samples),
                                          batch_data_samples, self.test_cfg)
        if logits.shape[-2:] != inputs.shape[-2:]:
            logits = F.interpolate(logits, size=inputs.shape[-2:], mode='bilinear',
                                   align_corners=self.align_corners)
        return logits

    def loss(self, inputs, data_samples):
        """Training losses: ``dict[str, Tensor]`` with keys prefixed ``decode.``."""
        losses = self.decode_head.loss(self.head_inputs(inputs, data_samples), data_samples,
                                       self.train_cfg)
        return {f'decode.{k}': v for k, v in losses.items()}

    def predict(self, inputs, data_samples=None):
        """Predict segmentations: list of ``SegDataSample`` with ``pred_sem_seg`` and
        ``seg_logits`` at each image's original shape."""
        if data_samples is None:
            raise ValueError('SAMSegmentor.predict needs data samples (image metainfo)')
        logits = self.encode_decode(inputs, data_samples)
        results = self.postprocess_result(logits, data_samples)
        label_resize = self.test_cfg.get('label_resize', 'logits')
        if label_resize not in ('logits', 'nearest'):
            raise ValueError(f"model.test_cfg.label_resize={label_resize!r}: expected 'logits' "
                             "(resize logits, then argmax) or 'nearest' (argmax, then zoom)")
        if label_resize == 'nearest' and logits.shape[1] > 1:
            for i, sample in enumerate(results):
                labels = _network_labels(logits[i], sample.metainfo)
                sample.pred_sem_seg.data = zoom_nearest(labels, sample.metainfo['ori_shape'])
        return results

    def _forward(self, inputs, data_samples=None):
        """Raw head output (for tracing and FLOP counting)."""
        return self.decode_head.forward(self.head_inputs(inputs), data_samples)


def _network_labels(logits, meta):
    """(C, H, W) logits -> (1, h, w) argmax labels at the network resolution, with the padding
    removed and a test-time flip undone as ``BaseSegmentor.postprocess_result`` does."""
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
    height, width = logits.shape[-2:]
    labels = logits[:, top:height - bottom, left:width - right].argmax(0, keepdim=True)
    if meta.get('flip'):
        labels = labels.flip(dims=(2,) if meta.get('flip_direction') == 'horizontal' else (1,))
    return labels


"""VolumeSAMSegmentor: 3D patches through a 2D SAM as (B*T) slices, sliding window at test."""
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.registry import MODELS
from ..utils.native_grid_resampling import NATIVE_RESAMPLING_MODES, labels_on_native_grid
from ..utils.sliding_window_3d import sliding_window_inference_3d
from ..utils.volume_blocks import to_slices, to_volume
from .sam_segmentor import SAMSegmentor

_TEST_DEFAULTS = dict(mode='slide3d', patch_size=None, step_size=0.5, sigma_scale=1 / 8,
                      mirror_axes=(), window_batch=1, resample_to_native=True,
                      blend='logits', native_resampling='nnunet')
#: what the sliding window blends: the head's logits (nnU-Net 2.5.1; softmax after blending and
#: resampling) or mmsam's former per-window softmax probabilities.
BLEND_MODES = ('logits', 'probabilities')


@MODELS.register_module()
class VolumeSAMSegmentor(SAMSegmentor):
    """Segments volumes with a SAM image encoder that sees T consecutive slices at a time.

    Data flow (b-major, item b * T + t everywhere)::

        (B, C, T, H, W) -> stem -> (B, 3, T, H', W') -> (B*T, 3, H', W') -> backbone
        (depth adapters mix slices within a case) -> neck -> head (per-slice samples)

    The head receives B*T per-slice ``SegDataSample`` s (``gt_sem_seg`` (1, H, W)), so any 2D
    SAM head trains on volumes; depth-aware heads know T from their config.

    At test time a case is predicted as nnU-Net 2.5.1 predicts and exports it: its sliding
    window (:func:`sliding_window_inference_3d`: step 0.5, Gaussian weighting, zero padding of
    small volumes, optional mirroring) blends the head's logits (a 1-channel sigmoid head's
    logit l as the two logits (0, l)); they are resampled to the case's ``native_shape`` by
    nnU-Net's export rule (:func:`resample_scores_to_native`: order 1, nearest along an
    anisotropic z), softmaxed and argmaxed into ``pred_sem_seg`` (D0, H0, W0). A head with
    ``predicts_probabilities`` (MaskSAM) has its probabilities blended and resampled instead.

    ``test_cfg`` keys: ``patch_size`` (T, H, W) (default: (num_frames, encoder input / stem
    upsampling)), ``step_size``, ``sigma_scale``, ``mirror_axes`` ((0, 1, 2) = 8-flip TTA),
    ``window_batch`` (windows per forward), ``resample_to_native``, ``blend`` (``'logits'``,
    or ``'probabilities'``: softmax per window before blending, mmsam's former order) and
    ``native_resampling`` (``'nnunet'``, or ``'trilinear'``: mmsam's former resize).

    Args:
        stem (dict, optional): e.g. :class:`VolumeStem`; None repeats a 1-channel input to 3.
        **kwargs: :class:`SAMSegmentor` arguments.
    """

    TEST_CFG_KEYS = tuple(_TEST_DEFAULTS)
    TEST_MODES = ('slide3d', )

    def __init__(self, backbone, decode_head, stem=None, **kwargs):
        super().__init__(backbone, decode_head, **kwargs)
        self.stem = MODELS.build(stem) if stem is not None else None
        self.test_cfg = {**_TEST_DEFAULTS, **self.test_cfg}
        self.num_frames = getattr(self.backbone, 'num_frames', None)
        upsample = getattr(self.stem, 'upsample', 1)
        patch = self.test_cfg['patch_size']
        if patch is None:
            if self.num_frames is None:
                raise ValueError('VolumeSAMSegmentor: set test_cfg.patch_size=(T, H, W) (the '
                                 'backbone has no num_frames to take T from)')
            side = self.backbone.img_size // upsample
            patch = (self.num_frames, side, side)
        self.test_cfg['patch_size'] = tuple(int(p) for p in patch)
        for key, allowed in (('blend', BLEND_MODES),
                             ('native_resampling', NATIVE_RESAMPLING_MODES)):
            if self.test_cfg[key] not in allowed:
                raise ValueError(f'VolumeSAMSegmentor: test_cfg.{key} must be one of {allowed}, '
                                 f'got {self.test_cfg[key]!r}')
        self._check_depth(self.test_cfg['patch_size'][0], 'test_cfg.patch_size')

    def _check_depth(self, depth, where):
        if self.num_frames is not None and depth != self.num_frames:
            raise ValueError(
                f'{where} has depth T={depth} but model.backbone.num_frames={self.num_frames}: '
                f'the depth embeddings and adapters are built for {self.num_frames} slices; make '
                f'the patch depth of the data pipeline (RandomPatchCrop3D.patch_size) and '
                f'test_cfg.patch_size equal num_frames')

    def flatten_volume(self, inputs):
        """(B, C, T, H, W) -> stem -> (B*T, 3, H', W'), b-major."""
        if inputs.ndim != 5:
            raise ValueError(f'VolumeSAMSegmentor expects (B, C, T, H, W) inputs, got '
                             f'{tuple(inputs.shape)}; use VolumeDataPreProcessor')
        self._check_depth(inputs.shape[2], f'the input patch {tuple(inputs.shape[2:])}')
        x = self.stem(inputs) if self.stem is not None else inputs.expand(-1, 3, -1, -1, -1)
        size = self.backbone.img_size
        if x.shape[-2:] != (size, size):
            raise ValueError(f'patches of {tuple(inputs.shape[-2:])} pixels reach the encoder '
                             f'as {tuple(x.shape[-2:])}, but backbone.img_size={size}; change '
                             f'the patch size or the stem upsampling')
        return to_slices(x)

    @staticmethod
    def slice_samples(data_samples, depth, size):
        """Per-slice ``SegDataSample`` s (B*T, b-major) with ``gt_sem_seg`` (1, H, W) when the
        volume samples have one, and 2D metainfo of the encoder's input size."""
        slices = []
        for sample in data_samples:
            gt = sample.gt_sem_seg.data if 'gt_sem_seg' in sample else None
            for t in range(depth):
                meta = dict(img_shape=tuple(size), ori_shape=tuple(size), pad_shape=tuple(size),
                            case_id=sample.metainfo.get('case_id'), slice_index=t)
                item = SegDataSample(metainfo=meta)
                if gt is not None:
                    item.gt_sem_seg = PixelData(data=gt[t:t + 1])
                slices.append(item)
        return slices

    def loss(self, inputs, data_samples):
        """Training losses on (B, C, T, H, W) patches: ``dict[str, Tensor]``."""
        slices = self.slice_samples(data_samples, inputs.shape[2], inputs.shape[-2:])
        feats = self.extract_feat(self.flatten_volume(inputs))
        losses = self.decode_head.loss(feats, slices, self.train_cfg)
        return {f'decode.{k}': v for k, v in losses.items()}

    @property
    def blends_probabilities(self):
        """Whether the sliding window blends probabilities (the head's, or per-window softmax)
        rather than logits."""
        return (getattr(self.decode_head, 'predicts_probabilities', False)
                or self.test_cfg['blend'] == 'probabilities')

    def window_scores(self, windows):
        """What the sliding window blends, per window: (N, C, T, H, W) -> (N, K, T, H, W).

        The head's logits (K = num_classes; a 1-channel head's logit l as (0, l), whose
        softmax is (1 - sigmoid(l), sigmoid(l))), or its probabilities for a head with
        ``predicts_probabilities``, or softmax probabilities with ``test_cfg.blend=
        'probabilities'``.
        """
        n, _, depth, h, w = windows.shape
        slices = self.slice_samples([SegDataSample()] * n, depth, (h, w))
        x = self.flatten_volume(windows)
        logits = self.decode_head.predict(self.extract_feat(x), slices, self.test_cfg)
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode='bilinear',
                                   align_corners=self.align_corners)
        if getattr(self.decode_head, 'predicts_probabilities', False):
            scores = logits
        else:
            if logits.shape[1] == 1:
                logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
            scores = logits.softmax(dim=1) if self.test_cfg['blend'] == 'probabilities' \
                else logits
        return to_volume(scores, depth)

    def predict(self, inputs, data_samples=None):
        """Predict whole cases by sliding window.

        Args:
            inputs (Tensor): (1, C, D, H, W) one preprocessed case.
            data_samples (list[SegDataSample]): its sample, with ``native_shape`` metainfo
                when the prediction must be resampled to the original grid.

        Returns:
            list[SegDataSample]: with ``pred_sem_seg`` (D0, H0, W0) long class ids. The
            native grid's spacing is the ``native_spacing`` metainfo, else derived from
            ``spacing`` and the shapes; without ``spacing`` no axis counts as anisotropic.
        """
        if data_samples is None:
            raise ValueError('VolumeSAMSegmentor.predict needs data samples (case metainfo)')
        cfg = self.test_cfg
        for volume, sample in zip(inputs, data_samples):
            scores = sliding_window_inference_3d(
                volume, self.window_scores, cfg['patch_size'], cfg['step_size'],
                cfg['sigma_scale'], tuple(cfg['mirror_axes']), cfg['window_batch'])
            native = tuple(sample.metainfo.get('native_shape') or scores.shape[1:])
            if not cfg['resample_to_native']:
                native = tuple(scores.shape[1:])
            labels = labels_on_native_grid(
                scores, native, sample.metainfo.get('spacing'),
                sample.metainfo.get('native_spacing'), cfg['native_resampling'],
                probabilities=self.blends_probabilities)
            sample.pred_sem_seg = PixelData(data=labels)
        return data_samples

    def _forward(self, inputs, data_samples=None):
        """Raw head output of (B, C, T, H, W) patches (for tracing and FLOP counting)."""
        return self.decode_head.forward(self.extract_feat(self.flatten_volume(inputs)))

"""MultiHypothesisSegmentor: one encoder pass per image, M hypothesis masks and a consensus."""
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData

from mmsam.registry import MODELS
from ..decode_heads.box_prompt_head import mean_probability_logit
from ..utils.low_res_probability_resize import low_res_probability_masks
from .click_training import check_click_trainable, click_train_settings, click_training_losses
from .interactive_protocol import check_interactive_cfg, run_interactive_protocol
from .sam_segmentor import SAMSegmentor

OUTPUT_RESIZES = ('logits', 'low_res_probabilities')


@MODELS.register_module()
class MultiHypothesisSegmentor(SAMSegmentor):
    """A :class:`SAMSegmentor` whose head answers one prompt with M binary masks.

    The image is encoded once; the head's ``predict_hypotheses`` decodes M masks from that one
    embedding (SAM's multi-output tokens, a recurrent decoder, latent samples...). Each output
    ``SegDataSample`` holds, at the image's original size:

    - ``pred_hypotheses``: PixelData, ``data`` (M, H, W) bool, sigmoid(logit) > threshold;
    - ``pred_sem_seg``: PixelData, ``data`` (1, H, W) long, the consensus: the pixel-wise
      majority vote of the hypotheses (foreground where more than M / 2 agree; a tie is
      background), the mask that D_avg scores;
    - ``hypothesis_logits``: PixelData, ``data`` (M, H, W) float, only with
      ``test_cfg.return_logits=True``.

    A head whose ``reads_image`` is True (e.g. :class:`PSAMHead` with ``net_input='image'``)
    receives the preprocessed image after the features (see ``SAMSegmentor.head_inputs``).

    ``test_cfg`` keys: ``num_hypotheses`` (M; None = the head's default, and heads with a fixed
    number of outputs accept only theirs), ``return_logits`` (bool) and ``output_resize``:
    ``'logits'`` (default: the logits upsampled to the network input, the padding cropped,
    resized to the original size, then thresholded) or ``'low_res_probabilities'`` (MedSAM's
    official inference: the sigmoid of the head's low-resolution logits resized once,
    bilinearly, to the original size, see :func:`low_res_probability_masks`). ``interactive``
    (dict) runs the CVPR25 click protocol instead (box, then simulated clicks, the encoder once;
    :mod:`mmsam.models.segmentors.interactive_protocol`).

    Args: see :class:`SAMSegmentor`; the head must be a ``BoxPromptHead`` (or provide
        ``predict_hypotheses(feats, data_samples, num_hypotheses) -> (B, M, h, w)``).
    """

    TEST_CFG_KEYS = SAMSegmentor.TEST_CFG_KEYS + ('num_hypotheses', 'return_logits',
                                                  'output_resize', 'interactive')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        num = self.test_cfg.get('num_hypotheses')
        if num is not None and int(num) < 1:
            raise ValueError(f'MultiHypothesisSegmentor: test_cfg.num_hypotheses must be >= 1 '
                             f'(or None for the head\'s default), got {num}')
        resize = self.test_cfg.get('output_resize', 'logits')
        if resize not in OUTPUT_RESIZES:
            raise ValueError(f'MultiHypothesisSegmentor: test_cfg.output_resize={resize!r}; '
                             f'expected one of {OUTPUT_RESIZES}')
        if not hasattr(self.decode_head, 'predict_hypotheses'):
            raise TypeError(f'MultiHypothesisSegmentor needs a head with predict_hypotheses '
                            f'(e.g. MedSAMHead, SAMMCLHead), got {type(self.decode_head).__name__}')
        if self.test_cfg.get('interactive') is not None:  # the CVPR25 protocol at test time
            check_interactive_cfg(self.test_cfg['interactive'])
        # train_cfg=dict(click_iterations=N): iterative click training (click_training.py)
        self.click_train = click_train_settings(self.train_cfg, type(self).__name__)
        if self.click_train['click_iterations']:
            check_click_trainable(self.decode_head, type(self).__name__)

    def loss(self, inputs, data_samples):
        """Training losses (``decode.`` keys): the head's box-prompted loss, or with
        ``train_cfg.click_iterations`` > 0 its average over click rounds (see
        :func:`click_training_losses`)."""
        if not self.click_train['click_iterations']:
            return super().loss(inputs, data_samples)
        losses = click_training_losses(self, inputs, data_samples, **self.click_train)
        return {f'decode.{k}': v for k, v in losses.items()}

    def low_res_hypotheses(self, inputs, data_samples):
        """The head's hypothesis logits at its own resolution: (B, M, h, w)."""
        feats = self.head_inputs(inputs, data_samples)
        return self.decode_head.predict_hypotheses(feats, data_samples,
                                                   self.test_cfg.get('num_hypotheses'))

    def predict_hypotheses(self, inputs, data_samples):
        """Hypothesis logits at the network input size: (B, M, H, W)."""
        logits = self.low_res_hypotheses(inputs, data_samples)
        if logits.shape[-2:] != inputs.shape[-2:]:
            logits = F.interpolate(logits, size=inputs.shape[-2:], mode='bilinear',
                                   align_corners=self.align_corners)
        return logits

    def encode_decode(self, inputs, batch_data_samples):
        """Logits of the hypotheses' mean probability at the input size: (B, 1, H, W)."""
        return mean_probability_logit(self.predict_hypotheses(inputs, batch_data_samples))

    def predict(self, inputs, data_samples=None):
        """Predict M hypotheses and their consensus per image.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            data_samples (list[SegDataSample]): with metainfo and prompts.

        Returns:
            list[SegDataSample]: with ``pred_hypotheses``, ``pred_sem_seg`` (and
            ``hypothesis_logits``), see the class docstring.
        """
        if data_samples is None:
            raise ValueError('MultiHypothesisSegmentor.predict needs data samples (image '
                             'metainfo and prompts)')
        if self.test_cfg.get('interactive') is not None:
            return run_interactive_protocol(self, inputs, data_samples)
        return self.write_hypotheses(inputs, data_samples,
                                     self.low_res_hypotheses(inputs, data_samples))

    def write_hypotheses(self, inputs, data_samples, low_logits, return_logits=None):
        """Write the outputs of the class docstring from the head's low-res logits.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images (their size).
            data_samples (list[SegDataSample]): the batch's samples, written in place.
            low_logits (Tensor): (B, M, h, w) from :meth:`low_res_hypotheses`.
            return_logits (bool, optional): keep ``hypothesis_logits``; None: test_cfg's.

        Returns:
            list[SegDataSample]: ``data_samples``.
        """
        if return_logits is None:
            return_logits = self.test_cfg.get('return_logits', False)
        low_res = self.test_cfg.get('output_resize', 'logits') == 'low_res_probabilities'
        logits = low_logits
        if low_res or logits.shape[-2:] != inputs.shape[-2:]:
            logits = F.interpolate(low_logits, size=inputs.shape[-2:], mode='bilinear',
                                   align_corners=self.align_corners)
        threshold = torch.logit(torch.tensor(float(self.decode_head.threshold))).item()
        for i, (sample, sample_logits) in enumerate(zip(data_samples, logits)):
            h, w = sample.img_shape[:2]
            sample_logits = F.interpolate(sample_logits[None, :, :h, :w],
                                          size=sample.ori_shape[:2], mode='bilinear',
                                          align_corners=self.align_corners)[0]
            hypotheses = sample_logits > threshold
            if low_res:
                hypotheses = low_res_probability_masks(
                    low_logits[i], (h, w), tuple(inputs.shape[-2:]), sample.ori_shape[:2],
                    threshold=float(self.decode_head.threshold))
            consensus = 2 * hypotheses.sum(0, keepdim=True) > hypotheses.shape[0]
            sample.pred_hypotheses = PixelData(data=hypotheses)
            sample.pred_sem_seg = PixelData(data=consensus.long())
            if return_logits:
                sample.hypothesis_logits = PixelData(data=sample_logits)
        return data_samples

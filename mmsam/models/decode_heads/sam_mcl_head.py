"""SAM multiple choice learning: SAM's three-mask output trained winner-takes-all."""
from mmsam.registry import MODELS
from .box_prompt_head import BoxPromptHead

TRAIN_TARGETS = ('random_reader', 'all_annotations')


@MODELS.register_module()
class SAMMCLHead(BoxPromptHead):
    """SAM's multi-output head (mask tokens 1..3) as an M = 3 multiple-choice model.

    The baseline of SeqSAM's Table 1: one box prompt, SAM's three ambiguity-aware masks, and a
    winner-takes-all Dice loss (``MultipleChoiceDiceLoss``). Official SAM/MedSAM files load
    unchanged (the decoder keeps SAM's four tokens; token 0, the single-mask output, is not
    used).

    Training target (``train_target``): ``'random_reader'`` (default, as the official SeqSAM
    baseline) draws one non-empty annotation per sample and step, independently of the reader
    the box came from, and only the best of the M masks learns it (K = 1: SAM's own "min over
    the 3 masks" loss); ``'all_annotations'`` uses every annotation (empty ones included), each
    training its best hypothesis.

    Args:
        prompt_encoder (dict), mask_decoder (dict): see :class:`SAMDecodeHead`;
            ``mask_decoder.num_multimask_outputs`` is M (SAM: 3).
        loss_decode (dict | list[dict]): called as ``loss(hyp_logits, annotations, valid)``
            with (B, M, h, w), (B, K, h, w) and (B, K) tensors (K = 1 for ``'random_reader'``).
        train_target (str): ``'random_reader'`` or ``'all_annotations'``.
        **kwargs: :class:`BoxPromptHead` arguments.
    """

    def __init__(self, prompt_encoder, mask_decoder, loss_decode, train_target='random_reader',
                 **kwargs):
        if train_target not in TRAIN_TARGETS:
            raise ValueError(f'SAMMCLHead: train_target must be one of {TRAIN_TARGETS}, got '
                             f'{train_target!r}')
        num_outputs = mask_decoder.get('num_multimask_outputs', 3)
        if kwargs.setdefault('num_hypotheses', num_outputs) != num_outputs:
            raise ValueError(f'SAMMCLHead gives mask_decoder.num_multimask_outputs '
                             f'({num_outputs}) hypotheses; num_hypotheses must equal it')
        super().__init__(prompt_encoder, mask_decoder, loss_decode, **kwargs)
        self.train_target = train_target

    def forward(self, inputs, batch_data_samples):
        """Args: inputs (tuple[Tensor]): features, the (B, C, h, w) image embedding last;
        batch_data_samples (list[SegDataSample]): with box prompts.

        Returns:
            Tensor: (B, M, 4h, 4w) logits.
        """
        embedding, high_res = self.image_features(inputs)
        sparse, dense = self.box_prompt_embeddings(batch_data_samples, embedding.device)
        masks, _ = self.decode_masks(embedding, self.prompt_encoder.get_dense_pe(), sparse,
                                     dense, high_res)
        return masks[:, 1:]

    def loss_by_feat(self, seg_logits, batch_data_samples):
        """Args: seg_logits (Tensor): (B, M, h, w); batch_data_samples: with
        ``gt_annotations``.

        Returns:
            dict[str, Tensor]: one entry per loss.
        """
        size = seg_logits.shape[-2:]
        if self.train_target == 'random_reader':
            return self.sum_losses(seg_logits,
                                   self.random_reader_targets(batch_data_samples, size)[:, None])
        targets, valid = self.annotation_targets(batch_data_samples, size)
        return self.sum_losses(seg_logits, targets, valid)

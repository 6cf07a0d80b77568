"""MedSAM: SAM's box-prompted decoder with its single-mask output (one mask per box)."""
from mmsam.registry import MODELS
from .box_prompt_head import BoxPromptHead

TRAIN_TARGETS = ('random_reader', 'prompted')


@MODELS.register_module()
class MedSAMHead(BoxPromptHead):
    """Deterministic box-prompted SAM (Ma et al., MedSAM): one mask per box.

    The mask decoder keeps SAM's four mask tokens, so official SAM and MedSAM files load
    unchanged; the output is token 0, SAM's single-mask ("multimask_output=False") head. The
    losses (``loss_decode``: SeqSAM's baseline uses Dice alone, MedSAM's paper Dice + BCE) are
    computed at the logits' resolution (1/4 of the input: 256 x 256 for 1024).

    Training target (``train_target``): ``'random_reader'`` (default, as the official SeqSAM
    MedSAM baseline) is one non-empty annotation drawn per sample and step, independently of
    the reader the box came from; ``'prompted'`` is the annotation the box was drawn from
    (``gt_sem_seg``, as MedSAM itself trains).

    As the only hypothesis is one mask, GED's prediction-pair term is d(y', y'') = 0, as the
    SeqSAM paper notes for its MedSAM row.

    Args:
        prompt_encoder (dict), mask_decoder (dict): see :class:`SAMDecodeHead`.
        loss_decode (dict | list[dict]): called as ``loss(logits, target)`` with (B, h, w)
            tensors, e.g. ``MaskDiceLoss`` (and ``MaskBCELoss``).
        train_target (str): ``'random_reader'`` or ``'prompted'``.
        **kwargs: :class:`BoxPromptHead` arguments.
    """

    def __init__(self, prompt_encoder, mask_decoder, loss_decode, train_target='random_reader',
                 **kwargs):
        if train_target not in TRAIN_TARGETS:
            raise ValueError(f'MedSAMHead: train_target must be one of {TRAIN_TARGETS}, got '
                             f'{train_target!r}')
        if kwargs.setdefault('num_hypotheses', 1) != 1:
            raise ValueError('MedSAMHead gives one mask; num_hypotheses must be 1')
        super().__init__(prompt_encoder, mask_decoder, loss_decode, **kwargs)
        self.train_target = train_target

    def forward(self, inputs, batch_data_samples):
        """Args: inputs (tuple[Tensor]): features, the (B, C, h, w) image embedding last;
        batch_data_samples (list[SegDataSample]): with box prompts.

        Returns:
            Tensor: (B, 1, 4h, 4w) logits.
        """
        embedding, high_res = self.image_features(inputs)
        sparse, dense = self.box_prompt_embeddings(batch_data_samples, embedding.device)
        masks, iou = self.decode_masks(embedding, self.prompt_encoder.get_dense_pe(), sparse,
                                       dense, high_res)
        # SAM 2's decoder may fall back to a multimask output at eval (single_mask)
        single_mask = getattr(self.mask_decoder, 'single_mask', None)
        return masks[:, :1] if single_mask is None else single_mask(masks, iou)[0]

    def loss_by_feat(self, seg_logits, batch_data_samples):
        """Args: seg_logits (Tensor): (B, 1, h, w); batch_data_samples: with
        ``gt_annotations`` (``'random_reader'``) or ``gt_sem_seg`` (``'prompted'``).

        Returns:
            dict[str, Tensor]: one entry per loss.
        """
        logits = seg_logits[:, 0]
        if self.train_target == 'random_reader':
            target = self.random_reader_targets(batch_data_samples, logits.shape[-2:])
        else:
            target = self.prompted_targets(batch_data_samples, logits.shape[-2:])
        return self.sum_losses(logits, target)

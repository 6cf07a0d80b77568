"""SeqSAM: SAM's single-mask decoder run M times with a recurrent module over mask prompts."""
import math

import torch
import torch.nn as nn

from mmsam.registry import MODELS
from .box_prompt_head import BoxPromptHead

TRAIN_SELECTIONS = ('strided', 'random', 'first')
RECURRENT_INPUT_ORDERS = ('hz', 'zh')


def chunk_bounds(num_predictions, num_chunks):
    """Split ``range(num_predictions)`` into ``num_chunks`` runs of neighbours (strided pooling).

    Chunks are ``ceil(M / K)`` long and the last one shorter (SeqSAM sec. 2.5). Where that
    leaves fewer than K non-empty chunks (e.g. M = 5, K = 4 gives 2 + 2 + 1), the sequence is
    split as evenly as possible instead (sizes differing by at most one, the longer first).

    Args:
        num_predictions (int): M >= num_chunks.
        num_chunks (int): K >= 1.

    Returns:
        list[tuple[int, int]]: K ``(start, stop)`` pairs covering ``0..M-1`` in order.
    """
    size = math.ceil(num_predictions / num_chunks)
    starts = list(range(0, num_predictions, size))
    if len(starts) == num_chunks:
        return [(s, min(s + size, num_predictions)) for s in starts]
    base, extra = divmod(num_predictions, num_chunks)
    bounds, start = [], 0
    for k in range(num_chunks):
        stop = start + base + (k < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def select_for_training(num_predictions, num_targets, mode, device=None):
    """Which K of M > K predictions enter the matching loss during training.

    Args:
        num_predictions (int): M.
        num_targets (int): K < M.
        mode (str): ``'strided'`` (one random prediction from each of K consecutive chunks,
            SeqSAM's randomised strided pooling), ``'random'`` (K random predictions, Table 1B
            "Random K") or ``'first'`` (the first K, "First K").
        device (torch.device, optional): of the returned indices.

    Returns:
        Tensor: (K,) increasing prediction indices.
    """
    if mode == 'first':
        return torch.arange(num_targets, device=device)
    if mode == 'random':
        return torch.randperm(num_predictions, device=device)[:num_targets].sort().values
    picks = [start + int(torch.randint(stop - start, ()))
             for start, stop in chunk_bounds(num_predictions, num_targets)]
    return torch.tensor(picks, device=device)


@MODELS.register_module()
class SeqSAMHead(BoxPromptHead):
    """SeqSAM (Towle et al.): M hypotheses from one embedding by prompting SAM with its last mask.

    Step m decodes one mask with SAM's single-mask output (token 0) from the image embedding,
    the box prompt and a dense prompt made by the recurrent module::

        Z(1) = SAM's no-mask embedding;  Z(m) = mask_encoder(logits(m - 1)) for m > 1
        dense(m) = conv1([H(m), Z(m)]);   H(m + 1) = conv2([H(m), Z(m)]);   H(1) = 0

    with ``mask_encoder`` SAM's own mask-prompt encoder and conv1/conv2 3x3 convolutions
    (2C -> C). The order of the two input halves is ``recurrent_input_order``: ``'hz'``
    as written above (mmsam's reading), or ``'zh'``, the official code's ``CRnnCell``
    (``cat([Z, H])``; its ``conv_o`` is conv1 and ``conv_h`` conv2), so official weights load
    unchanged. The orders are the same model with the input channels of both convolutions
    swapped. Logits are back-propagated through time (``bptt_logits=False`` detaches them
    before they are re-encoded, so gradient flows between steps only through H: the paper's
    "No backprop" ablation). conv1 starts as the identity on Z (its H half randomly initialised,
    and H(1) = 0), so before training step 1 is exactly SAM's box-prompted single mask (our
    choice; the paper does not say how the convolutions are initialised).

    Training unrolls max(M, K) steps: with M < K the head trains on all K annotations and
    inference keeps the first M masks (SeqSAM sec. 2.5, "train using the available number of
    labels, and then truncate"); with M > K, ``train_selection`` picks K of the M masks. The
    picked masks are matched to the K annotations by the loss (``HungarianDiceLoss``), each
    sample on its own K; empty annotations (a reader who marked nothing) take part in the
    matching, and their matched losses weigh zero (``ignore_empty``, as the official code).
    Inference: any M (``test_cfg.num_hypotheses``; default
    ``num_hypotheses``), one encoder pass.

    Args:
        prompt_encoder (dict), mask_decoder (dict): see :class:`SAMDecodeHead`.
        loss_decode (dict | list[dict]): called as ``loss(pred_logits, targets, valid)`` with
            (1, M', h, w), (1, K, h, w), (1, K) tensors, one sample at a time.
        num_hypotheses (int): M during training and the default at inference (3 or 10).
        train_selection (str): ``'strided'``, ``'random'`` or ``'first'``, used when M > K.
        bptt_logits (bool): back-propagate through the re-encoded logits.
        recurrent_input_order (str): ``'hz'`` (``cat([H, Z])``) or ``'zh'`` (``cat([Z, H])``,
            the official ``CRnnCell``).
        **kwargs: :class:`BoxPromptHead` arguments.
    """

    def __init__(self, prompt_encoder, mask_decoder, loss_decode, num_hypotheses=3,
                 train_selection='strided', bptt_logits=True, recurrent_input_order='hz',
                 **kwargs):
        if train_selection not in TRAIN_SELECTIONS:
            raise ValueError(f'SeqSAMHead train_selection must be one of {TRAIN_SELECTIONS}, '
                             f'got {train_selection!r}')
        if recurrent_input_order not in RECURRENT_INPUT_ORDERS:
            raise ValueError(f'SeqSAMHead recurrent_input_order must be one of '
                             f'{RECURRENT_INPUT_ORDERS}, got {recurrent_input_order!r}')
        super().__init__(prompt_encoder, mask_decoder, loss_decode,
                         num_hypotheses=num_hypotheses, **kwargs)
        self.train_selection, self.bptt_logits = train_selection, bool(bptt_logits)
        self.recurrent_input_order = recurrent_input_order
        width = self.prompt_encoder.embed_dim
        self.conv1 = nn.Conv2d(2 * width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(2 * width, width, 3, padding=1)
        z_half = slice(width, None) if recurrent_input_order == 'hz' else slice(0, width)
        with torch.no_grad():  # identity on Z; the H half keeps its default random init
            self.conv1.weight[:, z_half] = 0
            self.conv1.weight[:, z_half, 1, 1] = torch.eye(width)
            self.conv1.bias.zero_()

    def forward(self, inputs, batch_data_samples, num_hypotheses=None):
        """Unroll the recurrent decoder.

        Args:
            inputs (tuple[Tensor]): features, the (B, C, h, w) image embedding last.
            batch_data_samples (list[SegDataSample]): with box prompts.
            num_hypotheses (int, optional): M; default ``self.num_hypotheses``.

        Returns:
            Tensor: (B, M, 4h, 4w) logits, step by step.
        """
        return self.unroll(inputs, batch_data_samples, num_hypotheses)[0]

    def unroll(self, inputs, batch_data_samples, num_hypotheses=None):
        """Unroll the recurrent decoder, keeping each step's IoU prediction.

        Args: see :meth:`forward`.

        Returns:
            tuple[Tensor, Tensor]: (B, M, 4h, 4w) logits and (B, M) IoU predictions of
            token 0, step by step.
        """
        num = self.num_hypotheses if num_hypotheses is None else int(num_hypotheses)
        if num < 1:
            raise ValueError(f'SeqSAMHead: the number of hypotheses must be >= 1, got {num}')
        embedding, high_res = self.image_features(inputs)
        image_pe = self.prompt_encoder.get_dense_pe()
        # step 0: the box (and any clicks or previous mask); later steps: the previous output
        sparse, z = self.box_prompt_embeddings(batch_data_samples, embedding.device)
        hidden = torch.zeros_like(z)
        outputs, ious = [], []
        for step in range(num):
            if step > 0:
                previous = outputs[-1] if self.bptt_logits else outputs[-1].detach()
                _, z = self.prompt_encoder(points=None, boxes=None, masks=previous)
            parts = [hidden, z] if self.recurrent_input_order == 'hz' else [z, hidden]
            state = torch.cat(parts, dim=1)
            masks, iou = self.decode_masks(embedding, image_pe, sparse, self.conv1(state),
                                           high_res)
            outputs.append(masks[:, :1])
            ious.append(iou[:, :1])
            if step + 1 < num:  # the last H(m + 1) would feed no step
                hidden = self.conv2(state)
        return torch.cat(outputs, dim=1), torch.cat(ious, dim=1)

    def predict_hypotheses(self, inputs, batch_data_samples, num_hypotheses=None):
        """(B, M, h, w) logits for any M (default ``num_hypotheses``)."""
        return self.forward(inputs, batch_data_samples, num_hypotheses)

    def loss(self, inputs, batch_data_samples, train_cfg):
        """Unroll max(M, K_max) steps and compute the matching loss: ``dict[str, Tensor]``."""
        num_annotations = max(len(s.gt_annotations.data) if 'gt_annotations' in s else 0
                              for s in batch_data_samples)
        steps = max(self.num_hypotheses, num_annotations)
        return self.loss_by_feat(self.forward(inputs, batch_data_samples, steps),
                                 batch_data_samples)

    def loss_by_feat(self, seg_logits, batch_data_samples):
        """Matching loss per sample, with strided pooling when M > K.

        Args:
            seg_logits (Tensor): (B, M, h, w) logits.
            batch_data_samples (list[SegDataSample]): with ``gt_annotations``.

        Returns:
            dict[str, Tensor]: each loss averaged over the batch.
        """
        targets, valid = self.annotation_targets(batch_data_samples, seg_logits.shape[-2:])
        per_sample = []
        for logits, masks, ok in zip(seg_logits, targets, valid):
            masks = masks[ok]
            if len(logits) > len(masks):
                logits = logits[select_for_training(len(logits), len(masks),
                                                    self.train_selection, logits.device)]
            per_sample.append(self.sum_losses(logits[None], masks[None]))
        return {name: torch.stack([s[name] for s in per_sample]).mean()
                for name in per_sample[0]}

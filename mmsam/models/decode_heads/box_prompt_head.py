"""The base of box-prompted SAM heads that give M hypothesis masks per image."""
import numpy as np
import torch
import torch.nn.functional as F

from .sam_decode_head import SAMDecodeHead

# The metainfo key of a previous low-resolution mask logit map used as SAM's mask prompt.
PROMPT_MASK_KEY = 'prompt_mask_logits'


def input_scale(sample):
    """(2,) x and y factors from the loaded image's pixels to the network input's
    (``img_shape / ori_shape``), for boxes and points alike."""
    (h, w), (oh, ow) = sample.img_shape[:2], sample.ori_shape[:2]
    return torch.tensor([w / ow, h / oh], dtype=torch.float32)


def has_interactive_prompts(meta):
    """Whether a sample's metainfo holds clicks or a mask prompt (beyond a box)."""
    points = meta.get('prompt_points')
    return (points is not None and len(points) > 0) or meta.get(PROMPT_MASK_KEY) is not None


def mean_probability_logit(hypothesis_logits):
    """The logit of the hypotheses' mean foreground probability.

    Args:
        hypothesis_logits (Tensor): (B, M, H, W) logits.

    Returns:
        Tensor: (B, 1, H, W) logits (probabilities clamped to [1e-6, 1 - 1e-6]).
    """
    mean_prob = hypothesis_logits.sigmoid().mean(1, keepdim=True)
    return torch.logit(mean_prob.clamp(1e-6, 1 - 1e-6))


class BoxPromptHead(SAMDecodeHead):
    """SAM's prompt encoder and mask decoder prompted with one box per image (and clicks).

    Subclasses define :meth:`forward` (hypothesis logits) and :meth:`loss_by_feat`. The box
    comes with the data: ``prompt_box`` in each sample's metainfo, ``(x0, y0, x1, y1)`` in pixels
    of the loaded image (see ``BoxPromptFromAnnotation``); it is scaled here to the network
    input by ``img_shape / ori_shape``. Positive / negative clicks (``prompt_points``,
    ``prompt_point_labels``) and a previous low-resolution mask (``prompt_mask_logits``) join
    it when present (see :meth:`sample_prompts`). The image must be resized to the network
    input without padding (``Resize(scale=(S, S), keep_ratio=False)``, as MedSAM does), so that the
    annotations, kept at the loaded size, map onto the logits by resizing alone.

    Binary output: ``out_channels=1`` and a probability ``threshold`` (0.5).

    Args:
        prompt_encoder (dict), mask_decoder (dict), loss_decode (dict | list[dict]): see
            :class:`SAMDecodeHead`.
        num_hypotheses (int): M, the number of masks :meth:`forward` returns by default.
        **kwargs: ``BaseDecodeHead`` arguments.
    """

    def __init__(self, prompt_encoder, mask_decoder, loss_decode, num_hypotheses=1,
                 threshold=0.5, **kwargs):
        if int(num_hypotheses) < 1:
            raise ValueError(f'{type(self).__name__}: num_hypotheses must be >= 1, got '
                             f'{num_hypotheses}')
        super().__init__(num_classes=2, prompt_encoder=prompt_encoder, mask_decoder=mask_decoder,
                         loss_decode=loss_decode, out_channels=1, threshold=threshold, **kwargs)
        self.num_hypotheses = int(num_hypotheses)

    def box_prompt_embeddings(self, batch_data_samples, device):
        """Sparse and dense prompt embeddings of each sample's box, clicks and previous mask.

        Boxes alone (the one-shot heads' input) take SAM's batched call unchanged. With
        clicks or a mask prompt, each sample's prompts are embedded as SAM embeds them alone
        (points-only prompts get SAM's one padding point), and shorter token lists are padded
        with SAM's "not a point" token, what a point labelled -1 embeds to.

        Args:
            batch_data_samples (list[SegDataSample]): with ``img_shape``, ``ori_shape`` and
                prompts in their metainfo: ``prompt_box``, ``prompt_points`` /
                ``prompt_point_labels`` and ``prompt_mask_logits`` (see :meth:`sample_prompts`).
            device (torch.device): where the embeddings go.

        Returns:
            tuple[Tensor, Tensor]: sparse (B, T, C) tokens and dense (B, C, h, w) embeddings.
        """
        if not any(has_interactive_prompts(s.metainfo) for s in batch_data_samples):
            return self.prompt_encoder(points=None, masks=None,
                                       boxes=self.prompt_boxes(batch_data_samples, device))
        tokens, dense = [], []
        for sample in batch_data_samples:
            points, box, mask = self.sample_prompts(sample, device)
            sparse, _ = self.prompt_encoder(points=points, boxes=box, masks=None)
            tokens.append(sparse[0])
            dense.append(self.dense_prompt_embedding(mask, device))
        pad = self.prompt_encoder.not_a_point_embed.weight[0]
        length = max(len(t) for t in tokens)
        sparse = torch.stack([torch.cat([t, pad.expand(length - len(t), -1)]) for t in tokens])
        return sparse, torch.cat(dense)

    def sample_prompts(self, sample, device):
        """One sample's prompts for SAM's prompt encoder, scaled to the network input.

        Metainfo keys (pixels of the loaded image, as ``ClickSimulator`` writes them):
        ``prompt_box`` (4,) (x0, y0, x1, y1); ``prompt_points`` (N, 2) (x, y) with
        ``prompt_point_labels`` (N,) in {1 foreground, 0 background, -1 padding};
        ``prompt_mask_logits`` (h, w) or (1, h, w): a previous low-resolution logit map of the
        network input frame, e.g. this head's own output (``mask_input_size``, 4x the embedding
        grid), given as is to SAM's mask prompt. A box or at least one point is needed.

        Returns:
            tuple: points ((1, N, 2) coords, (1, N) labels) or None, box (1, 4) or None,
            mask (1, 1, h, w) or None.
        """
        meta = sample.metainfo
        where = f'{type(self).__name__}: the sample of {meta.get("img_path")}'
        scale = input_scale(sample)
        box = None
        if meta.get('prompt_box') is not None:
            box = torch.as_tensor(meta['prompt_box'], dtype=torch.float32).reshape(1, 4)
            box = (box * scale.repeat(2)).to(device)
        points = None
        coords = meta.get('prompt_points')
        if coords is not None and len(coords) > 0:
            coords = torch.as_tensor(np.asarray(coords), dtype=torch.float32)
            if 'prompt_point_labels' not in meta:
                raise KeyError(f'{where} has prompt_points but no prompt_point_labels')
            labels = torch.as_tensor(np.asarray(meta['prompt_point_labels'])).reshape(-1)
            if coords.ndim != 2 or coords.shape[1] != 2 or len(labels) != len(coords):
                raise ValueError(f'{where}: prompt_points must be (N, 2) (x, y) with N '
                                 f'prompt_point_labels, got {tuple(coords.shape)} and '
                                 f'{len(labels)} labels')
            if not bool(((labels >= -1) & (labels <= 1)).all()):
                raise ValueError(f'{where}: prompt_point_labels must be 1 (foreground), 0 '
                                 f'(background) or -1 (padding), got {labels.tolist()}')
            points = ((coords * scale)[None].to(device), labels.long()[None].to(device))
        if box is None and points is None:
            raise KeyError(f'{where} has no prompt: give prompt_box or prompt_points (add '
                           'BoxPromptFromAnnotation or ClickSimulator to the pipeline and keep '
                           'its keys in the meta_keys of the packing transform)')
        mask = meta.get(PROMPT_MASK_KEY)
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.float32)
            size = tuple(self.prompt_encoder.mask_input_size)
            if tuple(mask.shape[-2:]) != size or mask.dim() not in (2, 3) or (
                    mask.dim() == 3 and len(mask) != 1):
                raise ValueError(f'{where}: {PROMPT_MASK_KEY} must be (h, w) or (1, h, w) with '
                                 f'(h, w) = {size} (the head\'s low-resolution logits), got '
                                 f'{tuple(mask.shape)}')
            mask = mask.reshape(1, 1, *size).to(device)
        return points, box, mask

    def dense_prompt_embedding(self, mask, device):
        """SAM's dense embedding of a (1, 1, h, w) mask prompt, or its no-mask embedding when
        None: (1, C, h', w')."""
        pe = self.prompt_encoder
        if mask is not None:
            return pe._embed_masks(mask)
        return pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            1, -1, *pe.image_embedding_size).to(device)

    def prompt_boxes(self, batch_data_samples, device):
        """Each sample's ``prompt_box`` scaled to the network input: (B, 4) (x0, y0, x1, y1)."""
        boxes = []
        for sample in batch_data_samples:
            if 'prompt_box' not in sample.metainfo:
                raise KeyError(f'{type(self).__name__} needs a box prompt, but the sample of '
                               f'{sample.metainfo.get("img_path")} has none: add '
                               'BoxPromptFromAnnotation to the pipeline and keep prompt_box in '
                               'the meta_keys of the packing transform')
            scale = input_scale(sample).repeat(2)
            boxes.append(torch.as_tensor(sample.prompt_box, dtype=torch.float32) * scale)
        return torch.stack(boxes).to(device)

    def annotation_targets(self, batch_data_samples, size):
        """Every annotator's mask, resized (nearest) to the logits' size and stacked.

        Args:
            batch_data_samples (list[SegDataSample]): with ``gt_annotations`` (K, H, W).
            size (tuple[int, int]): (h, w) of the logits.

        Returns:
            tuple[Tensor, Tensor]: targets (B, K_max, h, w) float in {0, 1} and valid
            (B, K_max) bool (False where a sample has fewer than K_max annotations).
        """
        masks = []
        for sample in batch_data_samples:
            data = self._annotations(sample).float()[None]
            masks.append(F.interpolate(data, size=size, mode='nearest')[0])
        k_max = max(len(m) for m in masks)
        targets = masks[0].new_zeros(len(masks), k_max, *size)
        valid = torch.zeros(len(masks), k_max, dtype=torch.bool, device=targets.device)
        for i, m in enumerate(masks):
            targets[i, :len(m)] = m
            valid[i, :len(m)] = True
        return targets, valid

    def random_reader_targets(self, batch_data_samples, size):
        """One annotation per sample, drawn uniformly among its non-empty ones: (B, h, w).

        The draw (torch's generator, seeded by mmengine's ``randomness``) is independent of the
        reader the box was drawn from, as the official SeqSAM baselines (MCL, MedSAM) choose
        their target. A sample whose annotations are all empty gets the empty target.

        Args:
            batch_data_samples (list[SegDataSample]): with ``gt_annotations`` (K, H, W).
            size (tuple[int, int]): (h, w) of the logits.

        Returns:
            Tensor: (B, h, w) float targets in {0, 1}, resized with nearest sampling.
        """
        chosen = []
        for sample in batch_data_samples:
            masks = self._annotations(sample).float()
            non_empty = torch.nonzero(masks.flatten(1).any(1)).flatten()  # at the loaded size
            if len(non_empty) == 0:
                target = torch.zeros_like(masks[0])
            else:
                target = masks[non_empty[int(torch.randint(len(non_empty), ()))]]
            chosen.append(F.interpolate(target[None, None], size=size, mode='nearest')[0, 0])
        return torch.stack(chosen)

    def prompted_targets(self, batch_data_samples, size):
        """The mask the box was drawn from (``gt_sem_seg``), resized to ``size``: (B, h, w)."""
        for sample in batch_data_samples:
            self._check_unpadded(sample)
        return self.resize_labels(batch_data_samples, size).float()

    def _annotations(self, sample):
        """A sample's (K, H, W) annotator masks, checked to be packed and unpadded."""
        if 'gt_annotations' not in sample:
            raise KeyError(f'{type(self).__name__} trains on the annotators\' masks, but the '
                           f'sample of {sample.metainfo.get("img_path")} has no '
                           'gt_annotations: pack them with PackMultiAnnotatorInputs')
        self._check_unpadded(sample)
        return sample.gt_annotations.data

    def _check_unpadded(self, sample):
        meta = sample.metainfo
        batch_shape = meta.get('batch_input_shape', meta['img_shape'])
        if tuple(meta['img_shape'][:2]) != tuple(batch_shape[:2]):
            raise ValueError(
                f'{type(self).__name__}: {meta.get("img_path")} was resized to '
                f'{meta["img_shape"][:2]} and padded to {batch_shape[:2]}; resize images to the '
                'network input without padding (Resize(scale=(S, S), keep_ratio=False))')

    def predict_hypotheses(self, inputs, batch_data_samples, num_hypotheses=None):
        """Hypothesis logits for inference.

        Args:
            inputs (tuple[Tensor]): encoder features, the image embedding last.
            batch_data_samples (list[SegDataSample]): with the box prompts.
            num_hypotheses (int, optional): M; heads with a fixed number of outputs accept
                only their own (``self.num_hypotheses``).

        Returns:
            Tensor: (B, M, h, w) logits.
        """
        if num_hypotheses not in (None, self.num_hypotheses):
            raise ValueError(f'{type(self).__name__} always gives {self.num_hypotheses} '
                             f'hypotheses, but test_cfg.num_hypotheses={num_hypotheses}; remove '
                             'it from test_cfg or use a head that can vary M (e.g. SeqSAMHead)')
        return self.forward(inputs, batch_data_samples)

    def predict(self, inputs, batch_data_samples, test_cfg):
        """Per-pixel foreground logits of the hypotheses' mean probability: (B, 1, H, W).

        (mmseg's single-output interface; :class:`MultiHypothesisSegmentor` uses
        :meth:`predict_hypotheses`.)
        """
        return self.predict_by_feat(
            mean_probability_logit(self.predict_hypotheses(inputs, batch_data_samples)),
            [s.metainfo for s in batch_data_samples])

"""The base of box-prompted SAM heads that give M hypothesis masks per image."""
import torch
import torch.nn.functional as F

from .sam_decode_head import SAMDecodeHead


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
    """SAM's prompt encoder and mask decoder prompted with one box per image.

    Subclasses define :meth:`forward` (hypothesis logits) and :meth:`loss_by_feat`. The box
    comes with the data: ``prompt_box`` in each sample's metainfo, ``(x0, y0, x1, y1)`` in pixels
    of the loaded image (see ``BoxPromptFromAnnotation``); it is scaled here to the network
    input by ``img_shape / ori_shape``. The image must be resized to the network input without
    padding (``Resize(scale=(S, S), keep_ratio=False)``, as MedSAM does), so that the
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
        """Sparse and dense prompt embeddings of each sample's box.

        Args:
            batch_data_samples (list[SegDataSample]): with ``prompt_box``, ``img_shape`` and
                ``ori_shape`` in their metainfo.
            device (torch.device): where the embeddings go.

        Returns:
            tuple[Tensor, Tensor]: sparse (B, 2, C) box-corner tokens and dense (B, C, h, w)
            no-mask embeddings.
        """
        return self.prompt_encoder(points=None, boxes=self.prompt_boxes(batch_data_samples, device),
                                   masks=None)

    def prompt_boxes(self, batch_data_samples, device):
        """Each sample's ``prompt_box`` scaled to the network input: (B, 4) (x0, y0, x1, y1)."""
        boxes = []
        for sample in batch_data_samples:
            if 'prompt_box' not in sample.metainfo:
                raise KeyError(f'{type(self).__name__} needs a box prompt, but the sample of '
                               f'{sample.metainfo.get("img_path")} has none: add '
                               'BoxPromptFromAnnotation to the pipeline and keep prompt_box in '
                               'the meta_keys of the packing transform')
            (h, w), (oh, ow) = sample.img_shape[:2], sample.ori_shape[:2]
            scale = torch.tensor([w / ow, h / oh, w / ow, h / oh], dtype=torch.float32)
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

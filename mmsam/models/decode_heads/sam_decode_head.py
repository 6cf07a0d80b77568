"""The base of mmsam's decode heads built on SAM's prompt encoder and mask decoder."""
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy

from mmsam.registry import MODELS


def repeat_high_res(high_res, repeats):
    """Each item's high-resolution features repeated ``repeats`` times (as
    ``repeat_interleave`` on the embedding), or None: list[Tensor] | None."""
    if high_res is None:
        return None
    return [f.repeat_interleave(repeats, dim=0) for f in high_res]


class SAMDecodeHead(BaseDecodeHead):
    """Owns SAM's prompt encoder and mask decoder; heads decide how they are run.

    Differences from mmseg's ``BaseDecodeHead``: there is no ``conv_seg`` (SAM's hypernetwork
    MLPs make the logits); ``forward``/``predict`` receive the data samples, which carry the
    prompts; the loss is computed at the logits' resolution against labels resized with
    nearest-neighbour sampling (as SAMed and H-SAM do), not on upsampled logits.

    Args:
        num_classes (int): classes including background.
        prompt_encoder (dict): config of a :class:`SAMPromptEncoder`.
        mask_decoder (dict): config of a :class:`SAMMaskDecoder`.
        loss_decode (dict | list[dict]): losses called as ``loss(logits, label,
            ignore_index=...)``.
        **kwargs: the rest of ``BaseDecodeHead``'s arguments (``align_corners``,
            ``ignore_index``, ``threshold``, ...).
    """

    def __init__(self, num_classes, prompt_encoder, mask_decoder, loss_decode, **kwargs):
        width = mask_decoder.get('transformer_dim', 256)
        super().__init__(in_channels=width, channels=width, num_classes=num_classes,
                         loss_decode=loss_decode, init_cfg=None, **kwargs)
        del self.conv_seg, self.dropout
        self.prompt_encoder = MODELS.build(prompt_encoder)
        self.mask_decoder = MODELS.build(mask_decoder)

    def image_features(self, inputs):
        """The decoder's image inputs from the encoder's features.

        SAM's decoder reads the image embedding (the last feature); SAM 2's
        (:class:`SAM2MaskDecoder`) adds ``no_mem_embed`` to it and projects the stride-4 and
        stride-8 FPN levels for its pixel decoder (``prepare_features``).

        Args:
            inputs (tuple[Tensor]): encoder features, the (B, C, h, w) image embedding last.

        Returns:
            tuple: the (B, C, h, w) embedding and the high-resolution features (a list of
            tensors, SAM 2) or None (SAM).
        """
        prepare = getattr(self.mask_decoder, 'prepare_features', None)
        return (inputs[-1], None) if prepare is None else prepare(inputs)

    def decode_masks(self, embedding, image_pe, sparse, dense, high_res=None, decoder=None):
        """``decoder.predict`` (default: ``mask_decoder``), given the high-resolution
        features where the decoder uses them.

        Returns:
            tuple[Tensor, Tensor]: masks (N, num_mask_tokens, 4h, 4w) logits and IoU (N, .).
        """
        decoder = self.mask_decoder if decoder is None else decoder
        if high_res is None:
            return decoder.predict(embedding, image_pe, sparse, dense)
        return decoder.predict(embedding, image_pe, sparse, dense, high_res_features=high_res)

    def upscale(self, src, high_res=None):
        """``mask_decoder.upscale`` with the high-resolution features where it uses them:
        [(N, C/4, 2h, 2w), (N, C/8, 4h, 4w)]."""
        if high_res is None:
            return self.mask_decoder.upscale(src)
        return self.mask_decoder.upscale(src, high_res)

    def prompt_free_embeddings(self, embedding):
        """SAM's prompt embeddings for "no prompt": no sparse tokens, the no-mask embedding.

        Args:
            embedding (Tensor): (B, C, h, w) image embedding.

        Returns:
            tuple[Tensor, Tensor]: sparse (B, 0, C) and dense (1, C, h, w) embeddings.
        """
        pe = self.prompt_encoder
        sparse = embedding.new_zeros(embedding.shape[0], 0, pe.embed_dim)
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *embedding.shape[-2:])
        return sparse, dense

    def predict(self, inputs, batch_data_samples, test_cfg):
        """Predict logits at the network input size.

        Args:
            inputs (tuple[Tensor]): encoder features, the image embedding last.
            batch_data_samples (list[SegDataSample]): with metainfo (and prompts).
            test_cfg (dict): unused by the base.

        Returns:
            Tensor: (B, out_channels, H, W) logits.
        """
        seg_logits = self.forward(inputs, batch_data_samples)
        return self.predict_by_feat(seg_logits, [s.metainfo for s in batch_data_samples])

    def loss(self, inputs, batch_data_samples, train_cfg):
        """Compute the losses of a batch: ``dict[str, Tensor]``."""
        return self.loss_by_feat(self.forward(inputs, batch_data_samples), batch_data_samples)

    def resize_labels(self, batch_data_samples, size):
        """Stack ground-truth labels resized (nearest) to ``size``: (B, h, w) long."""
        labels = self._stack_batch_gt(batch_data_samples).float()
        return F.interpolate(labels, size=size, mode='nearest').squeeze(1).long()

    def loss_by_feat(self, seg_logits, batch_data_samples):
        """Losses at the logits' resolution.

        Args:
            seg_logits (Tensor): (B, C, h, w) logits.
            batch_data_samples (list[SegDataSample]): with ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: one entry per loss plus ``acc_seg``.
        """
        seg_label = self.resize_labels(batch_data_samples, seg_logits.shape[-2:])
        losses = self.sum_losses(seg_logits, seg_label, ignore_index=self.ignore_index)
        losses['acc_seg'] = accuracy(seg_logits, seg_label, ignore_index=self.ignore_index)
        return losses

    def sum_losses(self, *args, **kwargs):
        """Call every loss of ``loss_decode`` with the same arguments.

        Returns:
            dict[str, Tensor]: losses by ``loss_name``, summed where names repeat.
        """
        losses = {}
        loss_list = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [
            self.loss_decode]
        for loss_decode in loss_list:
            value = loss_decode(*args, **kwargs)
            losses[loss_decode.loss_name] = losses.get(loss_decode.loss_name, 0) + value
        return losses

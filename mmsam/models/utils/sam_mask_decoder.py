"""SAM's mask decoder as a registered component, with a batch-aligned forward."""
import torch
import torch.nn as nn
from segment_anything.modeling import MaskDecoder, TwoWayTransformer

from mmsam.registry import MODELS
from .masked_two_way_transformer import two_way_transformer_forward
from .sam_checkpoint import load_part_state_dict, read_sam_part


@MODELS.register_module()
class SAMMaskDecoder(MaskDecoder):
    """segment-anything's ``MaskDecoder`` (two-way transformer, hypernetwork mask heads).

    Unlike ``MaskDecoder.forward``, which pairs one image embedding with a set of prompts,
    :meth:`predict` pairs the i-th image embedding with the i-th prompt set, so a batch of B
    images with B prompt sets costs B decoder passes, not B^2. Official weights load with
    any number of mask tokens: SAM's 4 tokens (and their hypernetworks / IoU rows) are copied
    and extra ones keep their initial values.

    Args:
        transformer_dim (int): token width (SAM: 256).
        num_multimask_outputs (int): SAM: 3; the decoder has ``num_multimask_outputs + 1`` mask
            tokens.
        transformer_depth (int), transformer_mlp_dim (int), transformer_num_heads (int): the
            two-way transformer (SAM: 2, 2048, 8).
        iou_head_depth (int), iou_head_hidden_dim (int): SAM: 3, 256.
        two_way_layer_norm_eps (float): eps of the 4 LayerNorms of each two-way block
            (``norm1``..``norm4``): segment-anything's 1e-5, HuggingFace transformers'
            ``SamModel`` 1e-6 (``layer_norm_eps`` of its config; the HF-layout models, SeqSAM,
            SAM MCL and SeqSAM's MedSAM baseline, were trained with it). ``norm_final_attn``
            is 1e-5 in both.
        frozen (bool): freeze all weights.
        checkpoint (str, optional): official SAM/MedSAM file or a mask-decoder state dict,
            loaded by :meth:`init_weights`.
    """

    def __init__(self, transformer_dim=256, num_multimask_outputs=3, transformer_depth=2,
                 transformer_mlp_dim=2048, transformer_num_heads=8, iou_head_depth=3,
                 iou_head_hidden_dim=256, two_way_layer_norm_eps=1e-5, frozen=False,
                 checkpoint=None):
        super().__init__(
            transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(depth=transformer_depth, embedding_dim=transformer_dim,
                                          mlp_dim=transformer_mlp_dim,
                                          num_heads=transformer_num_heads),
            num_multimask_outputs=num_multimask_outputs, activation=nn.GELU,
            iou_head_depth=iou_head_depth, iou_head_hidden_dim=iou_head_hidden_dim)
        self.two_way_layer_norm_eps = float(two_way_layer_norm_eps)
        for layer in self.transformer.layers:
            for norm in (layer.norm1, layer.norm2, layer.norm3, layer.norm4):
                norm.eps = self.two_way_layer_norm_eps
        self.checkpoint = checkpoint
        if frozen:
            self.requires_grad_(False)

    def init_weights(self):
        """Load ``checkpoint`` when given."""
        if self.checkpoint is None:
            return
        state = read_sam_part(self.checkpoint, 'mask_decoder.', 'iou_token.weight')
        # SAM has 4 mask tokens; a decoder with fewer drops the surplus hypernetworks, one with
        # more keeps its extra hypernetworks (and token / IoU rows) at their initial values.
        state = {k: v for k, v in state.items()
                 if not (k.startswith('output_hypernetworks_mlps.')
                         and int(k.split('.')[1]) >= self.num_mask_tokens)}
        file_heads = {int(k.split('.')[1]) for k in state
                      if k.startswith('output_hypernetworks_mlps.')}
        extra_heads = [k for k in self.state_dict() if k.startswith('output_hypernetworks_mlps.')
                       and int(k.split('.')[1]) >= len(file_heads)]
        last_iou = f'iou_prediction_head.layers.{len(self.iou_prediction_head.layers) - 1}'
        load_part_state_dict(
            self, state, self.checkpoint, 'mask_decoder', ignore_missing=extra_heads,
            row_partial=('mask_tokens.weight', f'{last_iou}.weight', f'{last_iou}.bias'))

    def decode_tokens(self, image_embeddings, image_pe, sparse_embeddings, dense_embeddings,
                      token_mask=None, mask_mode='learnable', adapters=None, layout=None):
        """Run the two-way transformer, the i-th image embedding with the i-th prompt set.

        Args:
            image_embeddings (Tensor): (N, C, h, w); repeat an image's embedding to pair it
                with several prompt sets (e.g. hypotheses).
            image_pe (Tensor): (1, C, h, w) or (N, C, h, w) dense positional encoding (N: per
                item, e.g. SAM's PE plus MaskSAM's depth PE).
            sparse_embeddings (Tensor): (N, T, C) prompt tokens (T may be 0).
            dense_embeddings (Tensor): (N, C, h, w) or (1, C, h, w) dense prompt.
            token_mask (Tensor, optional): (N, 1 + num_mask_tokens + T, h * w) in [0, 1] on
                the token-to-image attention (see :func:`two_way_transformer_forward`).
            mask_mode (str): ``'learnable'`` or ``'binary'``.
            adapters (nn.Module, optional), layout (dict, optional): MaskSAM's decoder
                adapters and ``dict(num_queries=Q, hw=(h, w))``, see
                :func:`two_way_transformer_forward`.

        Returns:
            tuple[Tensor, Tensor]: output tokens (N, 1 + num_mask_tokens + T, C) and image
            features (N, C, h, w).
        """
        n = image_embeddings.shape[0]
        if image_pe.shape[0] not in (1, n):
            raise ValueError(f'image_pe has batch {image_pe.shape[0]}; expected 1 or the '
                             f'{n} image embeddings')
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(n, -1, -1), sparse_embeddings],
                           dim=1)
        src = image_embeddings + dense_embeddings
        b, c, h, w = src.shape
        hs, src = two_way_transformer_forward(self.transformer, src, image_pe.expand(n, -1, -1, -1),
                                              tokens, token_mask, mask_mode, adapters=adapters,
                                              layout=layout)
        return hs, src.transpose(1, 2).reshape(b, c, h, w)

    def upscale(self, src):
        """SAM's pixel decoder, keeping its two stages.

        Args:
            src (Tensor): (N, C, h, w) transformer image features.

        Returns:
            list[Tensor]: (N, C/4, 2h, 2w) and (N, C/8, 4h, 4w) features.
        """
        half = self.output_upscaling[:3](src)
        return [half, self.output_upscaling[3:](half)]

    def masks_from_tokens(self, hs, pixels):
        """Masks from the mask tokens' hypernetworks and per-pixel features.

        Args:
            hs (Tensor): (N, 1 + num_mask_tokens + T, C) output tokens.
            pixels (Tensor): (N, C', H', W') features, C' the hypernetworks' output width.

        Returns:
            tuple[Tensor, Tensor]: masks (N, num_mask_tokens, H', W') logits and IoU
            predictions (N, num_mask_tokens).
        """
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens, :]
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :])
                                for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        b, c, h, w = pixels.shape
        masks = (hyper_in @ pixels.reshape(b, c, h * w)).reshape(b, -1, h, w)
        return masks, self.iou_prediction_head(hs[:, 0, :])

    def predict(self, image_embeddings, image_pe, sparse_embeddings, dense_embeddings):
        """Decode masks, the i-th image embedding with the i-th prompt set.

        Args: see :meth:`decode_tokens`.

        Returns:
            tuple[Tensor, Tensor]: masks (N, num_mask_tokens, 4h, 4w) logits and IoU
            predictions (N, num_mask_tokens).
        """
        hs, src = self.decode_tokens(image_embeddings, image_pe, sparse_embeddings,
                                     dense_embeddings)
        return self.masks_from_tokens(hs, self.upscale(src)[-1])

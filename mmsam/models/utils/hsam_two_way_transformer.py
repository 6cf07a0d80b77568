"""H-SAM's two-way transformer: token-to-image cross-attention before self-attention."""
import torch.nn as nn
from segment_anything.modeling.common import MLPBlock
from segment_anything.modeling.transformer import Attention

from .hsam_masked_attention import OFFICIAL_UNUSED_NORM_WIDTHS, HSAMMaskedAttention


def cross_first_two_way_forward(transformer, image_embedding, image_pe, tokens, token_mask=None,
                                mask_mode='learnable'):
    """The official H-SAM two-way transformer forward (both stages).

    Each block runs, in this order (SAM runs self-attention first):
    token-to-image cross-attention (+ dropout where the block has one), ``norm2``; token
    self-attention, ``norm1`` (block 0, whose queries carry no positional encoding, replaces
    the queries with the self-attention output, no residual, as SAM's first block does); the
    MLP, ``norm3``; image-to-token cross-attention, ``norm4``. Then the final token-to-image
    attention (never masked) and ``norm_final_attn``.

    Args:
        transformer (nn.Module): segment-anything's ``TwoWayTransformer`` (stage 1) or
            :class:`HSAMTwoWayTransformer` (stage 2); its weights are used.
        image_embedding (Tensor): (B, C, h, w).
        image_pe (Tensor): (B, C, h, w) or (1, C, h, w).
        tokens (Tensor): (B, N, C) output (and prompt) tokens.
        token_mask (Tensor, optional): (B, N, h * w) prior for the blocks'
            :class:`HSAMMaskedAttention` layers (both cross-attentions, as the official
            stage 2); None: unmasked.
        mask_mode (str): see :class:`HSAMMaskedAttention`.

    Returns:
        tuple[Tensor, Tensor]: tokens (B, N, C) and image features (B, h * w, C).
    """
    keys = image_embedding.flatten(2).permute(0, 2, 1)
    key_pe = image_pe.flatten(2).permute(0, 2, 1)
    queries = tokens
    for layer in transformer.layers:
        attn_out = _attend(layer.cross_attn_token_to_image, queries + tokens, keys + key_pe,
                           keys, token_mask, mask_mode, False)
        dropout = getattr(layer, 'dropout', None)
        queries = layer.norm2(queries + (attn_out if dropout is None else dropout(attn_out)))
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + tokens
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        queries = layer.norm3(queries + layer.mlp(queries))
        attn_out = _attend(layer.cross_attn_image_to_token, keys + key_pe, queries + tokens,
                           queries, token_mask, mask_mode, True)
        keys = layer.norm4(keys + attn_out)
    attn_out = transformer.final_attn_token_to_image(q=queries + tokens, k=keys + key_pe, v=keys)
    return transformer.norm_final_attn(queries + attn_out), keys


def _attend(attention, q, k, v, mask, mode, mask_on_keys):
    if isinstance(attention, HSAMMaskedAttention):
        return attention(q, k, v, mask=mask, mode=mode, mask_on_keys=mask_on_keys)
    if mask is not None:
        raise ValueError('a token mask needs HSAMMaskedAttention layers (stage 2)')
    return attention(q=q, k=k, v=v)


class HSAMTwoWayBlock(nn.Module):
    """One stage-2 block (official ``TwoWayAttentionBlock2``): SAM's block with
    :class:`HSAMMaskedAttention` cross-attentions (no downsampling) and dropout on the
    token-to-image output; run by :func:`cross_first_two_way_forward`.

    Args:
        embedding_dim (int), num_heads (int), mlp_dim (int): widths.
        dropout (float): on the token-to-image attention output (official: 0.2).
        masked_attention_downsample_rate (int): of the cross-attentions (official: 1).
        skip_first_layer_pe (bool): block 0.
        unused_norm_widths (tuple[int]): see :class:`HSAMMaskedAttention`.
    """

    def __init__(self, embedding_dim, num_heads, mlp_dim, dropout=0.2,
                 masked_attention_downsample_rate=1, skip_first_layer_pe=False,
                 unused_norm_widths=OFFICIAL_UNUSED_NORM_WIDTHS):
        super().__init__()
        cross = dict(embedding_dim=embedding_dim, num_heads=num_heads,
                     downsample_rate=masked_attention_downsample_rate,
                     unused_norm_widths=unused_norm_widths)
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = HSAMMaskedAttention(**cross)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = HSAMMaskedAttention(**cross)
        self.skip_first_layer_pe = skip_first_layer_pe
        self.dropout = nn.Dropout(dropout)


class HSAMTwoWayTransformer(nn.Module):
    """H-SAM's stage-2 two-way transformer (official ``TwoWayTransformer2``).

    Args:
        depth (int), embedding_dim (int), num_heads (int), mlp_dim (int): as SAM's.
        dropout (float), masked_attention_downsample_rate (int), unused_norm_widths: see
            :class:`HSAMTwoWayBlock`.
        final_attention_downsample_rate (int): the final token-to-image attention's (2, SAM's).
    """

    def __init__(self, depth, embedding_dim, num_heads, mlp_dim, dropout=0.2,
                 masked_attention_downsample_rate=1, final_attention_downsample_rate=2,
                 unused_norm_widths=OFFICIAL_UNUSED_NORM_WIDTHS):
        super().__init__()
        self.layers = nn.ModuleList(
            HSAMTwoWayBlock(embedding_dim, num_heads, mlp_dim, dropout,
                            masked_attention_downsample_rate, skip_first_layer_pe=(i == 0),
                            unused_norm_widths=unused_norm_widths) for i in range(depth))
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=final_attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, tokens, token_mask=None, mask_mode='learnable'):
        """See :func:`cross_first_two_way_forward`."""
        return cross_first_two_way_forward(self, image_embedding, image_pe, tokens, token_mask,
                                           mask_mode)

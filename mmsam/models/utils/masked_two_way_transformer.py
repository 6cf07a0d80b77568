"""SAM's two-way transformer run with an optional mask on token-to-image cross-attention."""
import math

import torch


def masked_attention(attention, q, k, v, mask=None, mode='learnable'):
    """One SAM ``Attention`` call whose attention map is modulated by a mask.

    Args:
        attention (segment_anything.modeling.transformer.Attention): projections and heads.
        q (Tensor): (B, Nq, C) queries; k (Tensor): (B, Nk, C) keys; v (Tensor): (B, Nk, C).
        mask (Tensor, optional): (B, Nq, Nk) in [0, 1]; None gives SAM's attention exactly.
        mode (str): ``'learnable'`` (H-SAM eq. 3: ``M * softmax(K Q^T) V``, no renormalisation,
            gradients reach M) or ``'binary'`` (Mask2Former: ``softmax(t(M) + K Q^T) V`` with
            t(M) = -inf where M < 0.5; rows masked everywhere attend everywhere).

    Returns:
        Tensor: (B, Nq, C).
    """
    q = attention._separate_heads(attention.q_proj(q), attention.num_heads)
    k = attention._separate_heads(attention.k_proj(k), attention.num_heads)
    v = attention._separate_heads(attention.v_proj(v), attention.num_heads)
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is None:
        attn = logits.softmax(dim=-1)
    elif mode == 'learnable':
        attn = logits.softmax(dim=-1) * mask.unsqueeze(1)
    elif mode == 'binary':
        blocked = (mask < 0.5).unsqueeze(1)
        blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
        attn = logits.masked_fill(blocked, float('-inf')).softmax(dim=-1)
    else:
        raise ValueError(f"mask attention mode must be 'learnable' or 'binary', got {mode!r}")
    return attention.out_proj(attention._recombine_heads(attn @ v))


def two_way_transformer_forward(transformer, image_embedding, image_pe, tokens, token_mask=None,
                                mode='learnable', adapters=None, layout=None):
    """SAM's ``TwoWayTransformer.forward`` with a mask on every token-to-image attention and
    optional adapters (MaskSAM).

    Args:
        transformer (TwoWayTransformer): segment-anything's module (its weights are used).
        image_embedding (Tensor): (B, C, h, w).
        image_pe (Tensor): (B, C, h, w) positional encoding.
        tokens (Tensor): (B, N, C) output and prompt tokens.
        token_mask (Tensor, optional): (B, N, h * w) in [0, 1], how much each token may attend
            to each image position; None gives SAM's forward exactly.
        mode (str): see :func:`masked_attention`.
        adapters (nn.Module, optional): a ``MaskSAMDecoderAdapter``, called as
            ``adapters(x, site, layer, num_queries=Q, hw=(h, w))``: after token self-attention,
            after token->image attention, in parallel with the token MLP, after image->token
            attention (on the keys) and after the final token->image attention. None gives
            SAM's forward exactly.
        layout (dict, optional): ``dict(num_queries=Q, hw=(h, w))`` for the adapters: the
            batch is B = cases * T * Q items ordered (b, t, q); ``hw`` defaults to the
            embedding's grid, ``num_queries`` to 1.

    Returns:
        tuple[Tensor, Tensor]: tokens (B, N, C) and image features (B, h * w, C).
    """
    if adapters is not None:
        if len(adapters.layers) != len(transformer.layers):
            raise ValueError(f'decoder adapters have {len(adapters.layers)} layers, the '
                             f'two-way transformer {len(transformer.layers)}; set the '
                             "adapter's depth to the transformer's")
        layout = dict(layout or {})
        unknown = set(layout) - {'num_queries', 'hw'}
        if unknown:
            raise KeyError(f'layout has unknown keys {sorted(unknown)}; use num_queries, hw')
        layout.setdefault('num_queries', 1)
        layout.setdefault('hw', tuple(image_embedding.shape[-2:]))

    def adapt(x, site, layer=None):
        return x if adapters is None else adapters(x, site, layer, **layout)

    keys = image_embedding.flatten(2).transpose(1, 2)
    key_pe = image_pe.flatten(2).transpose(1, 2)
    queries = tokens
    for i, layer in enumerate(transformer.layers):
        if layer.skip_first_layer_pe:
            queries = adapt(layer.self_attn(q=queries, k=queries, v=queries), 'self_attn', i)
        else:
            q = queries + tokens
            queries = queries + adapt(layer.self_attn(q=q, k=q, v=queries), 'self_attn', i)
        queries = layer.norm1(queries)
        attn_out = masked_attention(layer.cross_attn_token_to_image, queries + tokens,
                                    keys + key_pe, keys, token_mask, mode)
        queries = queries + adapt(attn_out, 'cross_t2i', i)
        queries = layer.norm2(queries)
        mlp_out = layer.mlp(queries)
        if adapters is not None:
            mlp_out = mlp_out + adapters(queries, 'mlp', i, **layout)
        queries = layer.norm3(queries + mlp_out)
        attn_out = layer.cross_attn_image_to_token(q=keys + key_pe, k=queries + tokens,
                                                   v=queries)
        keys = layer.norm4(keys + adapt(attn_out, 'cross_i2t', i))
    attn_out = masked_attention(transformer.final_attn_token_to_image, queries + tokens,
                                keys + key_pe, keys, token_mask, mode)
    return transformer.norm_final_attn(queries + adapt(attn_out, 'final_t2i')), keys


def pad_token_mask(class_mask, num_tokens, first_class_token=1):
    """A per-token mask from per-class masks; other tokens (IoU, prompts) see everything.

    Args:
        class_mask (Tensor): (B, C, h * w) in [0, 1] for the C mask tokens.
        num_tokens (int): N, all tokens.
        first_class_token (int): index of the first mask token (after SAM's IoU token).

    Returns:
        Tensor: (B, N, h * w).
    """
    b, c, hw = class_mask.shape
    mask = class_mask.new_ones(b, num_tokens, hw)
    mask = torch.cat([mask[:, :first_class_token], class_mask,
                      mask[:, first_class_token + c:]], dim=1)
    return mask

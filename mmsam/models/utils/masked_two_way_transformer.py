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
                                mode='learnable'):
    """SAM's ``TwoWayTransformer.forward`` with a mask on every token-to-image attention.

    Args:
        transformer (TwoWayTransformer): segment-anything's module (its weights are used).
        image_embedding (Tensor): (B, C, h, w).
        image_pe (Tensor): (B, C, h, w) positional encoding.
        tokens (Tensor): (B, N, C) output and prompt tokens.
        token_mask (Tensor, optional): (B, N, h * w) in [0, 1], how much each token may attend
            to each image position; None gives SAM's forward exactly.
        mode (str): see :func:`masked_attention`.

    Returns:
        tuple[Tensor, Tensor]: tokens (B, N, C) and image features (B, h * w, C).
    """
    keys = image_embedding.flatten(2).transpose(1, 2)
    key_pe = image_pe.flatten(2).transpose(1, 2)
    queries = tokens
    for layer in transformer.layers:
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + tokens
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        queries = queries + masked_attention(layer.cross_attn_token_to_image, queries + tokens,
                                             keys + key_pe, keys, token_mask, mode)
        queries = layer.norm2(queries)
        queries = layer.norm3(queries + layer.mlp(queries))
        attn_out = layer.cross_attn_image_to_token(q=keys + key_pe, k=queries + tokens,
                                                   v=queries)
        keys = layer.norm4(keys + attn_out)
    attn_out = masked_attention(transformer.final_attn_token_to_image, queries + tokens,
                                keys + key_pe, keys, token_mask, mode)
    return transformer.norm_final_attn(queries + attn_out), keys


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

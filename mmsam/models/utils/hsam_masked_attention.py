"""H-SAM's stage-2 attention (the official ``Attention2``): SAM attention times a prior mask."""
import math

import torch.nn as nn
from segment_anything.modeling.transformer import Attention

MASK_MODES = ('learnable', 'binary')
# The official Attention2 owns three LayerNorms that its forward never calls, with widths
# fixed in the code (196, 9, 1024) whatever the build; they are kept so its files load strictly.
OFFICIAL_UNUSED_NORM_WIDTHS = (196, 9, 1024)


class HSAMMaskedAttention(Attention):
    """SAM's ``Attention`` whose attention map is multiplied by a per-token prior mask.

    As the official stage-2 attention computes it: the scaled logits ``q k^T / sqrt(d)`` of a
    row whose sum equals its length are set to 0 (an official guard), softmax, then the
    probabilities are multiplied by the mask (no renormalisation). Token-to-image attention
    (queries = tokens) multiplies by ``mask`` (B, N_tokens, h * w); image-to-token attention
    (queries = positions) by its transpose. The official code takes ``downsample_rate=1`` here
    (no internal width reduction, unlike SAM's cross-attention).

    Args:
        embedding_dim (int): token width.
        num_heads (int): heads.
        downsample_rate (int): internal width divisor (official: 1).
        unused_norm_widths (tuple[int]): widths of the official module's unused LayerNorms
            ``norm1``, ``norm2``, ... (official: 196, 9, 1024; ``()`` for none).
    """

    def __init__(self, embedding_dim, num_heads, downsample_rate=1,
                 unused_norm_widths=OFFICIAL_UNUSED_NORM_WIDTHS):
        super().__init__(embedding_dim, num_heads, downsample_rate=downsample_rate)
        for i, width in enumerate(unused_norm_widths, start=1):
            self.add_module(f'norm{i}', nn.LayerNorm(width))

    def forward(self, q, k, v, mask=None, mode='learnable', mask_on_keys=False):
        """Attend with an optional multiplicative mask.

        Args:
            q (Tensor): (B, Nq, C); k (Tensor): (B, Nk, C); v (Tensor): (B, Nk, C).
            mask (Tensor, optional): (B, N_tokens, h * w) in [0, 1]; None: no mask.
            mode (str): ``'learnable'`` (official: ``softmax(...) * M``) or ``'binary'``
                (Mask2Former: logits set to -inf where M < 0.5 before the softmax; rows masked
                everywhere attend everywhere).
            mask_on_keys (bool): True when the queries are image positions (image-to-token
                attention): the mask is transposed to (B, h * w, N_tokens).

        Returns:
            Tensor: (B, Nq, C).
        """
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)
        logits = q @ k.permute(0, 1, 3, 2)
        logits = logits / math.sqrt(q.shape[-1])
        # official guard: rows whose logits sum to the row length are zeroed
        logits = logits.masked_fill(logits.sum(-1, keepdim=True) == logits.shape[-1], 0.0)
        if mask is not None:
            mask = (mask.transpose(1, 2) if mask_on_keys else mask).unsqueeze(1)
        if mask is None or mode == 'learnable':
            attn = logits.softmax(dim=-1)
            if mask is not None:
                attn = attn * mask
        elif mode == 'binary':
            blocked = mask < 0.5
            blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
            attn = logits.masked_fill(blocked, float('-inf')).softmax(dim=-1)
        else:
            raise ValueError(f'mask attention mode must be one of {MASK_MODES}, got {mode!r}')
        return self.out_proj(self._recombine_heads(attn @ v))

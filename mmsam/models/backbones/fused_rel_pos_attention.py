"""SAM's ViT attention through ``scaled_dot_product_attention``, rel-pos bias folded in."""
from functools import lru_cache

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, get_rel_pos

from mmsam.utils.collect_env import cpu_bf16_kind

# Head dims are padded to a multiple of this: the fused CPU/GPU kernels want aligned sizes.
_HEAD_DIM_ALIGN = 16


def decomposed_rel_pos(q, rel_pos_h, rel_pos_w, hw):
    """SAM's decomposed relative-position terms of each query (MViTv2,
    segment-anything's ``add_decomposed_rel_pos``): ``rel_h = q . R_h[qh, kh]`` and
    ``rel_w = q . R_w[qw, kw]``.

    Args:
        q (Tensor): (B, heads, H * W, C), tokens row-major over (H, W).
        rel_pos_h (Tensor): (Lh, C); rel_pos_w (Tensor): (Lw, C).
        hw (tuple[int, int]): (H, W).

    Returns:
        tuple[Tensor, Tensor]: rel_h (B, heads, H, W, H) over key rows and rel_w
        (B, heads, H, W, W) over key columns.
    """
    h, w = hw
    r_q = q.reshape(*q.shape[:2], h, w, q.shape[-1])
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, get_rel_pos(h, h, rel_pos_h))
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, get_rel_pos(w, w, rel_pos_w))
    return rel_h, rel_w


def augment_qkv(q, k, v, rel_pos_h, rel_pos_w, hw, scale, pad_v=True):
    """Fold SAM's decomposed relative-position bias into q, k and v.

    The bias is ``rel_h[q, kh] + rel_w[q, kw]`` with ``rel_h = q . R_h[qh, kh]`` (MViTv2,
    segment-anything's ``add_decomposed_rel_pos``). It equals the dot product of the
    augmented query ``[q * scale, rel_h(q, :), rel_w(q, :)]`` with the augmented key
    ``[k, onehot(kh), onehot(kw)]``, so ``softmax(q_aug . k_aug) v`` is segment-anything's
    attention and the (HW)^2 bias is never built. ``v`` is zero-padded to the same head dim
    (the fused kernels need equal dims; ``pad_v=False`` leaves it as it is); the extra
    output columns are zero.

    Args:
        q, k, v (Tensor): (B, heads, H * W, C), tokens row-major over (H, W).
        rel_pos_h (Tensor): (Lh, C) relative position table for the height axis.
        rel_pos_w (Tensor): (Lw, C) for the width axis.
        hw (tuple[int, int]): (H, W).
        scale (float): the softmax scale, applied to q only (the bias is unscaled).

    Returns:
        tuple[Tensor]: q_aug, k_aug, v_aug, each (B, heads, H * W, D) with
        D = C + H + W rounded up to a multiple of 16 (v_aug: C without ``pad_v``); attend to
        them with ``scale=1``.
    """
    h, w = hw
    b, heads, n, c = q.shape
    rel_h, rel_w = decomposed_rel_pos(q, rel_pos_h, rel_pos_w, hw)
    rel_h, rel_w = rel_h.reshape(b, heads, n, h), rel_w.reshape(b, heads, n, w)
    dtype = rel_h.dtype  # the autocast dtype when autocast is on
    dim = c + h + w
    pad = (-dim) % _HEAD_DIM_ALIGN
    eye_h = torch.eye(h, dtype=dtype, device=q.device)
    eye_w = torch.eye(w, dtype=dtype, device=q.device)
    # key j = kh * W + kw carries onehot(kh) and onehot(kw)
    key_pos = torch.cat([eye_h.repeat_interleave(w, 0), eye_w.repeat(h, 1)], dim=1)
    if pad:
        key_pos = F.pad(key_pos, (0, pad))
    q_aug = torch.cat([(q * scale).to(dtype), rel_h, rel_w], dim=-1)
    if pad:
        q_aug = F.pad(q_aug, (0, pad))
    k_aug = torch.cat([k.to(dtype), key_pos.expand(b, heads, n, -1)], dim=-1)
    v_aug = F.pad(v.to(dtype), (0, dim + pad - c)) if pad_v else v.to(dtype)
    return q_aug, k_aug, v_aug


# The 'masked' kernel pays off from this many tokens (SAM's global blocks: 64 x 64 at 1024).
_MASKED_MIN_TOKENS = 1024


def masked_rel_pos_attention(q, k, v, rel_pos_h, rel_pos_w, hw, scale):
    """SAM's attention as SDPA with the rel-pos bias as ``attn_mask``, one query row at a time.

    The decomposed bias ``rel_h[q, kh] + rel_w[q, kw]`` (see :func:`augment_qkv`) is built for
    the ``W`` queries of one image row, (B, heads, W, H * W), and handed to
    ``scaled_dot_product_attention`` as an additive mask, so the head dim stays ``C`` (the
    folded form makes it ``C + H + W``: 3x the q.k FLOPs in SAM's global blocks) and each
    row's bias (12.6 MB for ViT-B at 1024) stays in cache instead of a (HW)^2 tensor in memory.

    Args:
        q, k, v (Tensor): (B, heads, H * W, C), tokens row-major over (H, W).
        rel_pos_h (Tensor): (Lh, C); rel_pos_w (Tensor): (Lw, C).
        hw (tuple[int, int]): (H, W).
        scale (float): the softmax scale of q.k (the bias is unscaled).

    Returns:
        Tensor: (B, heads, H * W, C).
    """
    h, w = hw
    b, heads, n, _ = q.shape
    rel_h, rel_w = decomposed_rel_pos(q, rel_pos_h, rel_pos_w, hw)
    rows = []
    for row in range(h):
        bias = (rel_h[:, :, row, :, :, None] + rel_w[:, :, row, :, None, :]).reshape(b, heads, w, n)
        rows.append(F.scaled_dot_product_attention(
            q[:, :, row * w:(row + 1) * w], k, v, attn_mask=bias.to(q.dtype), scale=scale))
    return torch.cat(rows, dim=2)


@lru_cache(maxsize=None)
def masked_kernel_wins():
    """Whether ``kernel='auto'`` takes the per-row masked kernel for CPU fp32 inference.

    Measured on an AVX2-only CPU (AMD EPYC, README's Performance section): the whole ViT-B
    encoder at 1024 ran 1.53x (1 thread) segment-anything's speed with it in the global blocks
    against 1.25x with the folded SDPA. On CPUs with AMX / AVX512-BF16 it has not been measured,
    so they keep the folded kernel.
    """
    return cpu_bf16_kind() is None


class FusedRelPosAttention(Attention):
    """segment-anything's ``Attention``, computed with ``F.scaled_dot_product_attention``.

    Built from an existing ``Attention`` whose modules and parameters it adopts under the
    same names (``qkv``, ``proj``, ``rel_pos_h``, ``rel_pos_w``), so state dicts are
    unchanged and adapters that replace ``qkv`` (LoRA) keep working. The decomposed
    relative-position bias enters through :func:`augment_qkv`: the SDPA kernel (flash
    attention on CPU and CUDA) never materialises the (HW)^2 attention or bias, forward and
    backward, and in bf16 no fp32 bias is added.

    Kernels (``kernel``): ``'sdpa'`` always uses ``scaled_dot_product_attention`` on the folded
    q, k, v; ``'matmul'`` computes ``softmax(q_aug k_aug^T) v`` with two GEMMs (the (HW)^2
    scores exist, but no bias is added); ``'masked'`` is :func:`masked_rel_pos_attention` (the
    bias as SDPA's mask, one query row at a time). ``'auto'`` (default) takes ``'matmul'`` when
    gradients flow on CPU (its backward is faster there); ``'masked'`` for CPU inference in
    fp32 on at least 1024 tokens (SAM's global blocks) where :func:`masked_kernel_wins` (CPUs
    without native bf16); ``'sdpa'`` otherwise (window blocks, autocast, CUDA).

    Args:
        attn (Attention): the module to take over (its parameters are reused, not copied).
        kernel (str): ``'auto'``, ``'sdpa'``, ``'matmul'`` or ``'masked'``.
    """

    KERNELS = ('auto', 'sdpa', 'matmul', 'masked')

    def __init__(self, attn, kernel='auto'):
        if kernel not in self.KERNELS:
            raise ValueError(f'FusedRelPosAttention: kernel={kernel!r} is not one of '
                             f'{self.KERNELS}')
        torch.nn.Module.__init__(self)
        self.kernel = kernel
        self.num_heads, self.scale = attn.num_heads, attn.scale
        self.qkv, self.proj = attn.qkv, attn.proj
        self.use_rel_pos = attn.use_rel_pos
        if self.use_rel_pos:
            self.rel_pos_h, self.rel_pos_w = attn.rel_pos_h, attn.rel_pos_w

    def forward(self, x):
        """Args: x (Tensor): (B, H, W, dim). Returns: Tensor: (B, H, W, dim)."""
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, HW, C)
        c = q.shape[-1]
        scale = self.scale
        kernel = self.chosen_kernel(x)
        if kernel == 'masked' and self.use_rel_pos:
            out = masked_rel_pos_attention(q, k, v, self.rel_pos_h, self.rel_pos_w, (h, w), scale)
            return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))
        gemm = kernel == 'matmul'
        if self.use_rel_pos:
            q, k, v = augment_qkv(q, k, v, self.rel_pos_h, self.rel_pos_w, (h, w), scale,
                                  pad_v=not gemm)
            scale = 1.0
        if gemm:
            # torch's CPU flash-attention backward is 3-6x slower than its forward; two
            # GEMMs and a softmax (the bias still folded into q.k, no add) back-propagate
            # through fast GEMMs. Memory: the (HW)^2 probabilities, as segment-anything's.
            attn = torch.softmax((q * scale) @ k.transpose(-2, -1), dim=-1)
            out = attn.to(v.dtype) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
        out = out[..., :c].transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)

    def chosen_kernel(self, x):
        """The kernel ``kernel`` picks for this call: ``'sdpa'``, ``'matmul'`` or ``'masked'``
        (see the class docstring).

        Args:
            x (Tensor): the block input, (B, H, W, dim).
        """
        if self.kernel != 'auto':
            return self.kernel
        if x.device.type != 'cpu':
            return 'sdpa'
        if torch.is_grad_enabled() and (
                x.requires_grad or any(p.requires_grad for p in self.parameters())):
            return 'matmul'
        tokens = x.shape[1] * x.shape[2]
        in_fp32 = x.dtype == torch.float32 and not torch.is_autocast_enabled('cpu')
        if in_fp32 and tokens >= _MASKED_MIN_TOKENS and masked_kernel_wins():
            return 'masked'
        return 'sdpa'

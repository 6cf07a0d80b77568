"""FLOPs of SAM's ViT image encoder, counted layer by layer (for TFLOP/s in benchmarks)."""
import math

from .sam_image_encoder import resolve_arch


def sam_encoder_flops(arch='vit_b', img_size=1024, batch=1):
    """Floating-point operations of one forward pass of SAM's image encoder.

    Counts multiply-adds as 2 FLOPs in every matrix product: patch embedding, qkv and output
    projections (on padded windows, as segment-anything runs them), the MLP, attention's
    q k^T and attn v (window blocks with their padded windows), the decomposed
    relative-position einsums, and the neck's two convolutions.
    Element-wise work (norms, softmax, GELU, adds) is left out, as FLOP counters do. ViT-B at
    1024 x 1024 is about 0.97 TFLOP (segment-anything-fast quotes the same order).

    Args:
        arch (str | dict): see :func:`resolve_arch`.
        img_size (int): input side length.
        batch (int): images.

    Returns:
        int: FLOPs, the reference algorithm's (segment-anything ``ImageEncoderViT``).
    """
    hp = resolve_arch(arch)
    e, p, heads = hp['embed_dim'], hp['patch_size'], hp['num_heads']
    head_dim = e // heads
    grid = img_size // p
    tokens = grid * grid
    mlp = int(e * hp['mlp_ratio'])
    flops = 2 * tokens * (3 * p * p) * e  # patch embedding
    for i in range(hp['depth']):
        if i in hp['global_attn_indexes']:
            groups, side = 1, grid
        else:
            ws = hp['window_size']
            groups, side = math.ceil(grid / ws) ** 2, ws
        n = side * side
        # qkv and proj run on the padded windows' tokens, the MLP on the grid's
        flops += 2 * groups * n * e * 4 * e + 2 * tokens * e * 2 * mlp
        per_head = 2 * n * n * head_dim * 2  # q k^T and attn v
        per_head += 2 * n * side * head_dim * 2  # rel_h and rel_w einsums
        flops += groups * heads * per_head
    out = hp['out_chans']
    flops += 2 * tokens * e * out + 2 * tokens * out * out * 9  # neck: 1x1 and 3x3 convs
    return batch * flops

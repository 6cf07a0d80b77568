"""The encoder FLOP count against torch's FLOP counter on segment-anything's own encoder."""
from functools import partial

import pytest
import torch
import torch.nn as nn
from segment_anything.modeling import ImageEncoderViT
from torch.utils.flop_counter import FlopCounterMode

from mmsam.models.backbones.encoder_flops import sam_encoder_flops


@pytest.mark.parametrize('arch,img_size', [
    # 6 x 6 windows on a 16 x 16 grid: padded windows
    (dict(embed_dim=64, depth=4, num_heads=2, global_attn_indexes=(1, 3), patch_size=16,
          window_size=6, out_chans=32), 256),
    (dict(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), patch_size=8,
          window_size=4, out_chans=16), 64),
])
def test_count_equals_torch_flop_counter(arch, img_size):
    enc = ImageEncoderViT(
        img_size=img_size, patch_size=arch['patch_size'], embed_dim=arch['embed_dim'],
        depth=arch['depth'], num_heads=arch['num_heads'], out_chans=arch['out_chans'],
        qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        window_size=arch['window_size'], global_attn_indexes=arch['global_attn_indexes'])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        enc(torch.randn(2, 3, img_size, img_size))
    assert sam_encoder_flops(arch, img_size, batch=2) == counter.get_total_flops()


def test_vit_b_at_1024_is_about_0_97_tflop():
    # the figure segment-anything-fast and the issue quote for ViT-B at 1024 x 1024
    assert sam_encoder_flops('vit_b', 1024) == pytest.approx(0.97e12, rel=0.01)

"""The fused attention against segment-anything's own encoder, adapters, bf16 and checkpoints."""
from functools import partial

import pytest
import torch
import torch.nn as nn
from segment_anything.modeling import ImageEncoderViT
from segment_anything.modeling.image_encoder import Attention

from mmsam.models import SAMImageEncoder
from mmsam.models.backbones import fused_rel_pos_attention
from mmsam.models.backbones.fused_rel_pos_attention import FusedRelPosAttention

# Grid 16 with 6 x 6 windows: windows are padded (16 -> 18); blocks 1 and 3 attend globally.
MIX_ARCH = dict(embed_dim=64, depth=4, num_heads=2, global_attn_indexes=(1, 3), patch_size=16,
                window_size=6, out_chans=32)
MIX_IMG = 256


def reference_encoder(arch, img_size, table_std=0.3):
    """segment-anything's ImageEncoderViT with random weights, rel-pos tables included."""
    torch.manual_seed(0)
    enc = ImageEncoderViT(
        img_size=img_size, patch_size=arch['patch_size'], embed_dim=arch['embed_dim'],
        depth=arch['depth'], num_heads=arch['num_heads'], mlp_ratio=4.0,
        out_chans=arch['out_chans'], qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rel_pos=True, window_size=arch['window_size'],
        global_attn_indexes=arch['global_attn_indexes']).eval()
    with torch.no_grad():
        enc.pos_embed.normal_(0, 0.5)
        for block in enc.blocks:
            # SAM zero-initialises them; random tables make the bias matter.
            block.attn.rel_pos_h.normal_(0, table_std)
            block.attn.rel_pos_w.normal_(0, table_std)
    return enc


def mmsam_encoder(ref, attn_impl, img_size=MIX_IMG, **kwargs):
    enc = SAMImageEncoder(arch=MIX_ARCH, img_size=img_size, attn_impl=attn_impl, **kwargs)
    missing, unexpected = enc.load_state_dict(ref.state_dict(), strict=False)
    assert not unexpected
    assert set(missing) == set(enc.adapter_param_names)
    return enc.eval()


def test_fused_equals_segment_anything_window_and_global():
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    fused = mmsam_encoder(ref, 'fused')
    assert all(isinstance(b.attn, FusedRelPosAttention) for b in fused.blocks)
    x = torch.randn(2, 3, MIX_IMG, MIX_IMG)
    with torch.no_grad():
        expected = ref(x)
        (out,) = fused(x)
    assert out.shape == (2, 32, 16, 16)
    with torch.no_grad():
        no_bias = mmsam_encoder(reference_encoder(MIX_ARCH, MIX_IMG, table_std=0), 'fused')(x)[0]
    # the bias matters: a fused path that dropped it would be off by far more than 1e-4
    assert (no_bias - expected).abs().max() > 1e-2
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize('kernel', ['sdpa', 'matmul', 'masked', 'auto'])
@pytest.mark.parametrize('hw', [(14, 14), (5, 9)])
def test_fused_attention_module_equals_reference(hw, kernel):
    """One attention layer, square and non-square grids, forward and input gradients."""
    torch.manual_seed(0)
    ref = Attention(48, num_heads=3, use_rel_pos=True, input_size=hw)
    with torch.no_grad():
        ref.rel_pos_h.normal_(0, 1.0)
        ref.rel_pos_w.normal_(0, 1.0)
    fused = FusedRelPosAttention(ref, kernel=kernel)
    x = torch.randn(2, *hw, 48, requires_grad=True)
    expected = ref(x)
    out = fused(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    g_ref, = torch.autograd.grad(expected.square().sum(), x)
    g_fused, = torch.autograd.grad(out.square().sum(), x)
    torch.testing.assert_close(g_fused, g_ref, atol=1e-4, rtol=1e-4)


def test_fused_other_img_size_resizes_tables_and_matches():
    """A 192 px input: every table is interpolated by get_rel_pos in both paths."""
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    fused = SAMImageEncoder(arch=MIX_ARCH, img_size=192, attn_impl='fused').eval()
    reference = SAMImageEncoder(arch=MIX_ARCH, img_size=192, attn_impl='reference').eval()
    state = {k: v for k, v in ref.state_dict().items() if k != 'pos_embed'}
    state['pos_embed'] = torch.randn(1, 12, 12, 64)
    for name in state:  # keep the 256 px tables: get_rel_pos interpolates them
        if name.endswith(('rel_pos_h', 'rel_pos_w')):
            for enc in (fused, reference):
                setattr(enc.get_submodule(name.rsplit('.', 1)[0]), name.rsplit('.', 1)[1],
                        nn.Parameter(state[name].clone()))
    fused.load_state_dict(state)
    reference.load_state_dict(state)
    x = torch.randn(1, 3, 192, 192)
    with torch.no_grad():
        torch.testing.assert_close(fused(x)[0], reference(x)[0], atol=1e-4, rtol=0)


def relative_grad_error(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_lora_gradients_fused_equal_reference():
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    lora = dict(type='LoRA', rank=4)
    encoders = {impl: mmsam_encoder(ref, impl, adapter=lora) for impl in ('fused', 'reference')}
    torch.manual_seed(1)
    # same LoRA weights in both; lora_b non-zero so lora_a gets a gradient
    lora_weights = {n: torch.randn_like(p) * 0.1 for n, p in
                    encoders['reference'].named_parameters() if 'lora_' in n}
    x = torch.randn(2, 3, MIX_IMG, MIX_IMG)
    # a random linear read-out: the neck's LayerNorm makes out.square().mean() nearly constant
    readout = torch.randn(2, 32, 16, 16)
    grads = {}
    for impl, enc in encoders.items():
        enc.load_state_dict(lora_weights, strict=False)
        (out,) = enc(x)
        (out * readout).sum().backward()
        grads[impl] = {n: p.grad for n, p in enc.named_parameters() if p.requires_grad}
    assert set(grads['fused']) == set(encoders['fused'].adapter_param_names)
    for name, g in grads['reference'].items():
        assert g.norm() > 0, name
        assert relative_grad_error(grads['fused'][name], g) <= 1e-4, name


def test_depth_adapters_and_lora_on_fused():
    """MaskSAM's depth blocks with LoRA inside: the same output on both attention paths."""
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    adapter = dict(type='ComposeAdapters', adapters=[
        dict(type='LoRA', rank=2),
        dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter'))])
    x = torch.randn(4, 3, MIX_IMG, MIX_IMG)
    outs = {}
    for impl in ('fused', 'reference'):
        torch.manual_seed(3)  # same adapter initialisation
        enc = mmsam_encoder(ref, impl, adapter=adapter, num_frames=2)
        assert isinstance(enc.blocks[0].attn, FusedRelPosAttention) == (impl == 'fused')
        with torch.no_grad():
            outs[impl] = enc(x)[0]
    torch.testing.assert_close(outs['fused'], outs['reference'], atol=1e-4, rtol=0)


def test_bf16_embedding_close_to_fp32():
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    enc = mmsam_encoder(ref, 'fused')
    x = torch.randn(1, 3, MIX_IMG, MIX_IMG)
    with torch.no_grad():
        (fp32,) = enc(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            (bf16,) = enc(x)
    rel_l2 = ((bf16.float() - fp32).norm() / fp32.norm()).item()
    # > 1e-5: autocast did run the encoder in bf16 (the neck's LayerNorm returns fp32)
    assert 1e-5 < rel_l2 <= 1e-2


def test_state_dict_keys_unchanged():
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    fused = SAMImageEncoder(arch=MIX_ARCH, img_size=MIX_IMG, attn_impl='fused')
    reference = SAMImageEncoder(arch=MIX_ARCH, img_size=MIX_IMG, attn_impl='reference')
    assert list(fused.state_dict()) == list(ref.state_dict()) == list(reference.state_dict())
    fused.load_state_dict(ref.state_dict(), strict=True)


def test_activation_checkpointing_same_gradients():
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    x = torch.randn(1, 3, MIX_IMG, MIX_IMG)
    readout = torch.randn(1, 32, 16, 16)
    grads = []
    for ckpt in (False, True):
        enc = mmsam_encoder(ref, 'fused', frozen=False, activation_checkpointing=ckpt).train()
        (out,) = enc(x)
        (out * readout).sum().backward()
        grads.append({n: p.grad for n, p in enc.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-6, rtol=1e-5, msg=name)


def test_unknown_attn_impl_is_named():
    with pytest.raises(ValueError, match="attn_impl='flash'"):
        SAMImageEncoder(arch=MIX_ARCH, img_size=MIX_IMG, attn_impl='flash')
    with pytest.raises(ValueError, match="kernel='cuda'"):
        FusedRelPosAttention(Attention(8, 2), kernel='cuda')


def test_bf16_training_path_close_to_fp32():
    """With LoRA gradients on CPU the GEMM kernel runs: its bf16 output stays close too."""
    ref = reference_encoder(MIX_ARCH, MIX_IMG)
    enc = mmsam_encoder(ref, 'fused', adapter=dict(type='LoRA', rank=2))
    assert enc.blocks[0].attn.chosen_kernel(torch.zeros(1, 4, 4, 64, requires_grad=True)) == 'matmul'
    x = torch.randn(1, 3, MIX_IMG, MIX_IMG)
    (fp32,) = enc(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        (bf16,) = enc(x)
    rel_l2 = ((bf16.float() - fp32).norm() / fp32.norm()).item()
    assert 1e-5 < rel_l2 <= 1e-2


@pytest.mark.parametrize('native_bf16', [False, True])
def test_auto_kernel_choice_follows_cpu_capability(monkeypatch, native_bf16):
    """CPU fp32 inference on >= 1024 tokens takes the masked kernel only on CPUs without native
    bf16 (detection faked both ways); autocast, small grids and gradients never take it."""
    monkeypatch.setattr(fused_rel_pos_attention, 'cpu_bf16_kind',
                        lambda: 'AMX' if native_bf16 else None)
    fused_rel_pos_attention.masked_kernel_wins.cache_clear()
    attn = FusedRelPosAttention(Attention(48, num_heads=3, use_rel_pos=True, input_size=(32, 32)))
    global_grid, window_grid = torch.zeros(1, 32, 32, 48), torch.zeros(1, 14, 14, 48)
    try:
        with torch.no_grad():
            assert attn.chosen_kernel(global_grid) == ('sdpa' if native_bf16 else 'masked')
            assert attn.chosen_kernel(window_grid) == 'sdpa'
            with torch.autocast('cpu', dtype=torch.bfloat16):
                assert attn.chosen_kernel(global_grid) == 'sdpa'
        assert attn.chosen_kernel(global_grid) == 'matmul'  # parameters require grad
    finally:
        fused_rel_pos_attention.masked_kernel_wins.cache_clear()


def test_masked_kernel_global_grid_equals_segment_anything():
    """The masked kernel on a 32 x 32 global grid (the size ``'auto'`` hands it) and a
    non-square one, against segment-anything's attention with large rel-pos tables."""
    for hw in [(32, 32), (24, 40)]:
        torch.manual_seed(1)
        ref = Attention(64, num_heads=4, use_rel_pos=True, input_size=hw)
        with torch.no_grad():
            ref.rel_pos_h.normal_(0, 1.0)
            ref.rel_pos_w.normal_(0, 1.0)
        x = torch.randn(2, *hw, 64)
        with torch.no_grad():
            torch.testing.assert_close(FusedRelPosAttention(ref, kernel='masked')(x), ref(x),
                                       atol=1e-5, rtol=0)

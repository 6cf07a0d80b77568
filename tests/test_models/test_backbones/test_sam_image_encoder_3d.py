"""SAMImageEncoder with num_frames (depth embedding, depth adapters) and with_neck_output."""
import copy

import pytest
import torch
from conftest import TINY_ARCH, TINY_IMG

from mmsam.models import SAMImageEncoder
from mmsam.models.adapters import DConvAdapter, DepthAdaptedBlock

T = 2


def _encoder(checkpoint=None, adapter_type='DConvAdapter', zero=True, frozen=True, **kwargs):
    adapter = dict(type='DepthBlockAdapter',
                   adapter=dict(type=adapter_type, zero_init=zero)) if adapter_type else None
    kwargs.setdefault('num_frames', T)
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, frozen=frozen, adapter=adapter,
                              checkpoint=checkpoint, **kwargs)
    encoder.init_weights()
    return encoder.eval()


def _reference_blocks(vit, x):
    """segment-anything's encoder, keeping every block's output: (blocks, neck)."""
    x = vit.patch_embed(x) + vit.pos_embed
    feats = []
    for block in vit.blocks:
        x = block(x)
        feats.append(x.permute(0, 3, 1, 2))
    return feats, vit.neck(feats[-1])


@pytest.mark.parametrize('adapter_type', ['DConvAdapter', 'DMLPAdapter', 'BottleneckAdapter'])
def test_zero_adapters_and_depth_embed_equal_segment_anything(tiny_sam, tiny_sam_checkpoint,
                                                              adapter_type):
    # segment-anything's attention: the 1e-6 identity is about the adapters (the fused
    # attention's own rounding is tested in test_fused_rel_pos_attention.py)
    encoder = _encoder(tiny_sam_checkpoint, adapter_type, out_indices=(0, 1),
                       with_neck_output=True, attn_impl='reference')
    assert all(isinstance(b, DepthAdaptedBlock) for b in encoder.blocks)
    x = torch.randn(2 * T, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        feats = encoder(x)
        ref_blocks, ref_neck = _reference_blocks(tiny_sam.image_encoder, x)
        torch.testing.assert_close(ref_neck, tiny_sam.image_encoder(x))
    assert [f.shape for f in feats] == [(4, 32, 8, 8)] * 3
    for out, ref in zip(feats, ref_blocks + [ref_neck]):
        torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)  # spec 10.1


def test_depth_embed_is_added_per_slice_b_major(tiny_sam, tiny_sam_checkpoint):
    encoder = _encoder(tiny_sam_checkpoint, adapter_type=None)
    torch.manual_seed(0)
    with torch.no_grad():
        encoder.depth_embed.normal_(0, 0.5)
    x = torch.randn(2 * T, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        (out,) = encoder(x)
        for t in range(T):
            ref = copy.deepcopy(tiny_sam.image_encoder)
            ref.pos_embed += encoder.depth_embed[:, t]
            torch.testing.assert_close(out[t::T], ref(x[t::T]), atol=1e-5, rtol=0)


def test_official_checkpoint_loads_strictly(tiny_sam, tiny_sam_checkpoint, tmp_path):
    encoder = _encoder(tiny_sam_checkpoint)
    own = encoder.state_dict()
    assert 'blocks.0.attn.qkv.weight' in own and 'blocks.1.mlp.lin1.weight' in own
    for key, value in tiny_sam.image_encoder.state_dict().items():
        assert torch.equal(own[key], value), key
    new = set(own) - set(tiny_sam.image_encoder.state_dict())
    assert new == set(encoder.adapter_param_names)
    assert 'depth_embed' in new and 'blocks.1.space_adapter.dwconv.weight' in new
    state = {f'image_encoder.{k}': v for k, v in tiny_sam.image_encoder.state_dict().items()}
    del state['image_encoder.blocks.0.attn.proj.bias']
    path = tmp_path / 'bad.pth'
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"missing keys \['blocks.0.attn.proj.bias'\]"):
        _encoder(str(path))


def test_perturbing_one_case_changes_no_other_case():
    torch.manual_seed(0)
    encoder = _encoder(adapter_type='DConvAdapter', zero=False, out_indices=(0, 1),
                       with_neck_output=True)
    with torch.no_grad():
        encoder.depth_embed.normal_()
        x = torch.randn(2 * T, 3, TINY_IMG, TINY_IMG)
        base = encoder(x)
        x2 = x.clone()
        x2[T:] += torch.randn_like(x2[T:])
        moved = encoder(x2)
    for a, b in zip(base, moved):
        torch.testing.assert_close(b[:T], a[:T], atol=1e-6, rtol=0)
        assert not torch.allclose(b[T:], a[T:])
    # Within a case, the depth adapters do mix slices.
    with torch.no_grad():
        x3 = x.clone()
        x3[0] += 1.0
        assert not torch.allclose(encoder(x3)[-1][1], base[-1][1])


def test_gradient_reaches_adapters_and_depth_embed_only(tiny_sam_checkpoint):
    torch.manual_seed(0)
    encoder = _encoder(tiny_sam_checkpoint, zero=False)
    encoder(torch.randn(2 * T, 3, TINY_IMG, TINY_IMG))[0].square().mean().backward()
    trainable = set(encoder.adapter_param_names)
    for name, param in encoder.named_parameters():
        if name in trainable:
            assert param.requires_grad and param.grad is not None, name
            assert param.grad.abs().sum() > 0, name
        else:
            assert not param.requires_grad and param.grad is None, name
    assert {n.split('.')[2] for n in trainable if n.startswith('blocks.')} == {
        'space_adapter', 'mlp_adapter'}


def test_batch_not_divisible_by_num_frames():
    encoder = _encoder(adapter_type=None, num_frames=3)
    with pytest.raises(ValueError, match=r'batch of 4 slices.*num_frames=3'):
        encoder(torch.randn(4, 3, TINY_IMG, TINY_IMG))


def test_depth_block_adapter_needs_num_frames():
    with pytest.raises(ValueError, match='backbone.num_frames'):
        _encoder(num_frames=None)
    with pytest.raises(ValueError, match='skip'):
        SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, num_frames=T, adapter=dict(
            type='DepthBlockAdapter', adapter=dict(type='DConvAdapter', skip=False)))


def test_with_neck_output_in_2d():
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, out_indices=(1,),
                              with_neck_output=True)
    assert encoder.num_frames is None and encoder.embed_dim == 32
    assert 'depth_embed' not in encoder.state_dict()
    block, neck = encoder(torch.randn(3, 3, TINY_IMG, TINY_IMG))
    assert block.shape == (3, 32, 8, 8) and neck.shape == (3, 32, 8, 8)
    torch.testing.assert_close(neck, encoder.neck(block))


@pytest.mark.parametrize('order', ['lora_first', 'depth_first'])
def test_lora_and_depth_blocks_compose(tiny_sam, tiny_sam_checkpoint, order):
    lora = dict(type='LoRA', rank=2)
    depth = dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter', zero_init=True))
    adapters = [lora, depth] if order == 'lora_first' else [depth, lora]
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, num_frames=T,
                              adapter=dict(type='ComposeAdapters', adapters=adapters),
                              checkpoint=tiny_sam_checkpoint)
    encoder.init_weights()
    names = set(encoder.adapter_param_names)
    assert 'blocks.0.attn.qkv.lora_a.q.weight' in names
    assert 'blocks.0.space_adapter.fc1.weight' in names and 'depth_embed' in names
    assert names == {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert 'blocks.0.attn.qkv.weight' in encoder.state_dict()
    x = torch.randn(T, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x)[0], tiny_sam.image_encoder(x), atol=1e-5, rtol=0)


def test_encoder_adapter_parameter_counts():
    """Hand count: 2 DConv(E) per block plus T * E for the depth embedding."""
    encoder = _encoder(zero=False, num_frames=5)
    per_dconv = sum(p.numel() for p in DConvAdapter(32, 5).parameters())
    assert per_dconv == 32 ** 2 // 2 + 32 + 31 * 32 // 4
    added = sum(p.numel() for n, p in encoder.named_parameters()
                if n in set(encoder.adapter_param_names))
    assert added == 2 * TINY_ARCH['depth'] * per_dconv + 5 * 32


def test_vit_b_synapse_encoder_adapter_count():
    """Hand count, ViT-B Synapse: 24 x 301,632 adapter + 26 x 768 depth-embed parameters."""
    encoder = SAMImageEncoder(arch='vit_b', img_size=64, num_frames=26,
                              adapter=dict(type='DepthBlockAdapter'))
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    assert trainable == 24 * 301632 + 26 * 768 == 7259136


def test_depth_adapted_block_applies_space_adapter_to_whole_slices(tiny_sam):
    """x + A_s(attention path) with A_s on unpartitioned (B * T, g, g, E) maps (MaskSAM's
    code: the DConv adapter after the window attention, on whole slices),
    then x + mlp(n) + 0.5 A_m(n); the attention path is taken from segment-anything's block."""
    torch.manual_seed(0)
    encoder = _encoder(zero=False)
    ref_block = copy.deepcopy(tiny_sam.image_encoder.blocks[0])  # windowed (4 x 4) block
    assert ref_block.window_size == 4
    block = encoder.blocks[0]
    block.load_state_dict(ref_block.state_dict(), strict=False)
    seen = []
    block.space_adapter.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    with torch.no_grad():
        x = torch.randn(2 * T, 8, 8, 32)
        out = block(x)
        ref_block.mlp.lin2.weight.zero_()
        ref_block.mlp.lin2.bias.zero_()
        attn_path = ref_block(x) - x
        z = x + block.space_adapter(attn_path)
        n = block.norm2(z)
        expected = z + block.mlp(n) + 0.5 * block.mlp_adapter(n)
    assert seen[0] == (2 * T, 8, 8, 32)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)

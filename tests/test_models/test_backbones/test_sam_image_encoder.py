import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_ARCH, TINY_IMG, build_reference_sam
from segment_anything import sam_model_registry

from mmsam.models import SAMImageEncoder
from mmsam.models.utils.sam_checkpoint import resize_abs_pos_embed, resize_rel_pos


def test_tiny_encoder_equals_segment_anything(tiny_sam, tiny_sam_checkpoint):
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, checkpoint=tiny_sam_checkpoint)
    encoder.init_weights()
    x = torch.randn(2, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        expected = tiny_sam.image_encoder(x)
        (out,) = encoder(x)
    assert out.shape == (2, 32, 8, 8)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_vit_b_equals_segment_anything(tmp_path):
    """ViT-B with random weights in the official file layout, at SAM's 1024 input."""
    torch.manual_seed(0)
    sam = sam_model_registry['vit_b'](checkpoint=None).eval()
    with torch.no_grad():
        sam.image_encoder.pos_embed.normal_(0, 0.02)
    path = tmp_path / 'sam_vit_b_random.pth'
    torch.save(sam.state_dict(), path)
    encoder = SAMImageEncoder(arch='vit_b', img_size=1024, checkpoint=str(path)).eval()
    encoder.init_weights()
    x = torch.randn(1, 3, 1024, 1024)
    with torch.no_grad():
        expected = sam.image_encoder(x)
        (out,) = encoder(x)
    assert out.shape == (1, 256, 64, 64)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_encoder_only_state_dict_loads(tiny_sam, tmp_path):
    path = tmp_path / 'encoder_only.pth'
    torch.save(tiny_sam.image_encoder.state_dict(), path)
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, checkpoint=str(path))
    encoder.init_weights()
    for key, value in tiny_sam.image_encoder.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key


def test_smaller_input_resizes_position_tables(tiny_sam, tiny_sam_checkpoint):
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG // 2,
                              checkpoint=tiny_sam_checkpoint)
    encoder.init_weights()
    """The tables resized as SAMed's official loader does (bicubic pos_embed; 2-D bilinear
    of the (1, 1, L, C) rel-pos tables of the global blocks, written here with torch's own
    calls), then segment-anything's encoder built for the small input with those tables gives
    the same embedding."""
    ref = tiny_sam.image_encoder
    pos = F.interpolate(ref.pos_embed.permute(0, 3, 1, 2), size=(4, 4), mode='bicubic',
                        align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(encoder.pos_embed.data, pos)
    # Block 1 attends globally: its table spans 2 * grid - 1 positions and is resized.
    rel = {}
    for axis in ('h', 'w'):
        table = getattr(ref.blocks[1].attn, f'rel_pos_{axis}')
        rel[axis] = F.interpolate(table[None, None], size=(7, table.shape[1]), mode='bilinear',
                                  align_corners=False)[0, 0]
    torch.testing.assert_close(encoder.blocks[1].attn.rel_pos_h.data, rel['h'])
    # Block 0 uses 4 x 4 windows: its table does not depend on the input size.
    assert torch.equal(encoder.blocks[0].attn.rel_pos_h, ref.blocks[0].attn.rel_pos_h)
    small = build_reference_sam(img_size=TINY_IMG // 2).image_encoder
    state = dict(ref.state_dict(), pos_embed=pos, **{
        f'blocks.1.attn.rel_pos_{axis}': rel[axis] for axis in ('h', 'w')})
    small.load_state_dict(state)
    x = torch.randn(1, 3, TINY_IMG // 2, TINY_IMG // 2)
    with torch.no_grad():
        (out,) = encoder(x)
        torch.testing.assert_close(out, small(x), atol=1e-4, rtol=0)
    assert out.shape == (1, 32, 4, 4)


def test_resize_helpers_keep_linear_ramps_and_constants():
    constant = torch.full((1, 8, 8, 3), 0.7)
    torch.testing.assert_close(resize_abs_pos_embed(constant, (4, 4)), torch.full((1, 4, 4, 3), 0.7))
    ramp = torch.linspace(-1, 1, 15)[:, None].repeat(1, 2)
    resized = resize_rel_pos(ramp, 7)
    assert resized.shape == (7, 2)
    assert torch.all(resized[1:, 0] > resized[:-1, 0])
    torch.testing.assert_close(resized[3], torch.zeros(2), atol=1e-6, rtol=0)


def test_out_indices_return_block_features_and_embedding(tiny_sam, tiny_sam_checkpoint):
    """Block 0's output (channels first) and the neck's embedding, as segment-anything's
    encoder computes them step by step."""
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, out_indices=(0, -1),
                              checkpoint=tiny_sam_checkpoint)
    encoder.init_weights()
    ref = tiny_sam.image_encoder
    x = torch.randn(1, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        block0, embedding = encoder(x)
        tokens = ref.blocks[0](ref.patch_embed(x) + ref.pos_embed)  # (1, 8, 8, 32)
        torch.testing.assert_close(block0, tokens.permute(0, 3, 1, 2), atol=1e-5, rtol=0)
        torch.testing.assert_close(embedding, ref(x), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match='out_indices'):
        SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, out_indices=(5,))


def test_missing_checkpoint_names_the_file_and_where_to_get_it(tmp_path):
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG,
                              checkpoint=str(tmp_path / 'sam_vit_b_01ec64.pth'))
    with pytest.raises(FileNotFoundError, match=r'sam_vit_b_01ec64\.pth.*segment-anything'):
        encoder.init_weights()


def test_checkpoint_with_wrong_keys_is_reported(tmp_path, tiny_sam):
    state = {f'image_encoder.{k}': v for k, v in tiny_sam.image_encoder.state_dict().items()}
    state['image_encoder.extra.weight'] = torch.zeros(1)
    del state['image_encoder.neck.0.weight']
    path = tmp_path / 'bad.pth'
    torch.save(state, path)
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, checkpoint=str(path))
    with pytest.raises(RuntimeError, match=r"missing keys \['neck.0.weight'\].*"
                                           r"unexpected keys \['extra.weight'\]"):
        encoder.init_weights()
    torch.save({'model_x': torch.zeros(1)}, path)
    with pytest.raises(KeyError, match='no image_encoder weights'):
        encoder.init_weights()


def test_wrong_arch_for_checkpoint_is_reported(tiny_sam_checkpoint):
    arch = dict(TINY_ARCH, embed_dim=48, num_heads=3)
    encoder = SAMImageEncoder(arch=arch, img_size=TINY_IMG, checkpoint=tiny_sam_checkpoint)
    with pytest.raises(RuntimeError, match='shape mismatches'):
        encoder.init_weights()


def test_unreadable_checkpoint_is_reported(tmp_path):
    path = tmp_path / 'broken.pth'
    path.write_bytes(b'not a checkpoint')
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, checkpoint=str(path))
    with pytest.raises(RuntimeError, match='cannot read SAM checkpoint'):
        encoder.init_weights()


def test_unknown_arch():
    with pytest.raises(KeyError, match='unknown SAM arch'):
        SAMImageEncoder(arch='vit_x')

"""SAMImageEncoder(pos_embed_resize=...): the official SAMed / H-SAM table resize as a switch."""
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_ARCH, TINY_IMG

from mmsam.models import SAMImageEncoder


def official_load_from_tables(state, grid, global_blocks):
    """SAMed's build_sam.load_from, written out: 2-D bilinear resizes, align_corners False."""
    pos = F.interpolate(state['image_encoder.pos_embed'].permute(0, 3, 1, 2), (grid, grid),
                        mode='bilinear', align_corners=False).permute(0, 2, 3, 1)
    rel = {}
    for i in global_blocks:
        for axis in 'hw':
            table = state[f'image_encoder.blocks.{i}.attn.rel_pos_{axis}']
            rel[(i, axis)] = F.interpolate(table[None, None], (2 * grid - 1, table.shape[1]),
                                           mode='bilinear', align_corners=False)[0, 0]
    return pos, rel


def test_bilinear_mode_equals_the_official_loader(tiny_sam, tiny_sam_checkpoint):
    grid = TINY_IMG // 2 // TINY_ARCH['patch_size']
    encoder = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG // 2,
                              checkpoint=tiny_sam_checkpoint, pos_embed_resize='bilinear')
    encoder.init_weights()
    state = torch.load(tiny_sam_checkpoint, weights_only=True)
    pos, rel = official_load_from_tables(state, grid, TINY_ARCH['global_attn_indexes'])
    torch.testing.assert_close(encoder.pos_embed.data, pos, atol=0, rtol=0)
    for (i, axis), table in rel.items():
        torch.testing.assert_close(getattr(encoder.blocks[i].attn, f'rel_pos_{axis}').data,
                                   table, atol=1e-7, rtol=0)
    bicubic = SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG // 2,
                              checkpoint=tiny_sam_checkpoint)
    bicubic.init_weights()
    assert not torch.allclose(bicubic.pos_embed, encoder.pos_embed)  # the default differs


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match='pos_embed_resize'):
        SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, pos_embed_resize='nearest')

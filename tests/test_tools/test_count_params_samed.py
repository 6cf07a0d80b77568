"""tools/analysis_tools/count_params.py on SAMed's paper-table configs gives the official model's
counts, counted here from segment-anything's own modules wired as SAMed's build_sam /
LoRA_Sam wire them (ViT-B at 512, 9 mask tokens, rank-4 LoRA on q and v of every block)."""
from functools import partial
from pathlib import Path

import pytest
import torch
from conftest import load_script

REPO = Path(__file__).resolve().parents[2]


def _official_samed_counts(img_size=512, num_classes=8, rank=4):
    """(total, trainable, LoRA) parameters of the official LoRA_Sam(sam_vit_b, rank)."""
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder,
                                           TwoWayTransformer)
    with torch.device('meta'):
        encoder = ImageEncoderViT(
            depth=12, embed_dim=768, img_size=img_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=12, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=[2, 5, 8, 11], window_size=14,
            out_chans=256)
        prompt = PromptEncoder(embed_dim=256, image_embedding_size=(img_size // 16,) * 2,
                               input_image_size=(img_size, img_size), mask_in_chans=16)
        decoder = MaskDecoder(num_multimask_outputs=num_classes,
                              transformer=TwoWayTransformer(depth=2, embedding_dim=256,
                                                            mlp_dim=2048, num_heads=8),
                              transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256)
    # LoRA_Sam: w_a Linear(768, r, bias=False) and w_b Linear(r, 768, bias=False) for q and v
    # of each of the 12 blocks; it freezes the image encoder only.
    lora = 12 * 2 * (768 * rank + rank * 768)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    trainable = lora + count(prompt) + count(decoder)
    return count(encoder) + trainable, trainable, lora


@pytest.mark.parametrize('config', ['samed_vit-b_synapse.py', 'samed_vit-b_synapse_10pct.py',
                                    'samed_vit-b_synapse_224-round-trip.py'])
def test_count_params_gives_the_official_samed_counts(config, capsys):
    groups = load_script('tools/analysis_tools/count_params.py').main(
        [str(REPO / 'configs' / 'samed' / config), '--meta', '--exact'])
    total = sum(t for t, _ in groups.values())
    trainable = sum(t for _, t in groups.values())
    official_total, official_trainable, lora = _official_samed_counts()
    assert (total, trainable) == (official_total, official_trainable) == (92_192_469, 4_913_621)
    assert groups['backbone adapter'] == (lora, lora) == (147_456, 147_456)
    assert groups['backbone'][1] == 0  # the image encoder is frozen, as LoRA_Sam does
    out = capsys.readouterr().out
    assert '92,192,469' in out and '4,913,621' in out

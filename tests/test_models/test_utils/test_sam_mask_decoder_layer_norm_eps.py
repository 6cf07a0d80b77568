"""SAMMaskDecoder(two_way_layer_norm_eps): HF SamModel's 1e-6 in the two-way blocks, checked
against segment-anything's own decoder with its LayerNorms set the same way."""
import torch
from segment_anything.modeling import MaskDecoder, TwoWayTransformer

from mmsam.models.utils import SAMMaskDecoder


def test_eps_reaches_the_block_norms_only_and_changes_the_masks():
    torch.manual_seed(0)
    ours = SAMMaskDecoder(transformer_dim=32, transformer_mlp_dim=64, transformer_num_heads=2,
                          iou_head_hidden_dim=32, two_way_layer_norm_eps=1e-6)
    with torch.no_grad():  # small-variance tokens make eps matter
        ours.iou_token.weight.mul_(1e-2)
        ours.mask_tokens.weight.mul_(1e-2)
    for layer in ours.transformer.layers:
        assert [n.eps for n in (layer.norm1, layer.norm2, layer.norm3, layer.norm4)] == [1e-6] * 4
    assert ours.transformer.norm_final_attn.eps == 1e-5
    reference = MaskDecoder(transformer_dim=32, transformer=TwoWayTransformer(
        depth=2, embedding_dim=32, mlp_dim=64, num_heads=2), iou_head_hidden_dim=32)
    reference.load_state_dict(ours.state_dict())
    default = SAMMaskDecoder(transformer_dim=32, transformer_mlp_dim=64, transformer_num_heads=2,
                             iou_head_hidden_dim=32)
    default.load_state_dict(ours.state_dict())
    # small-variance tokens make eps matter
    emb, pe = torch.randn(1, 32, 4, 4) * 1e-2, torch.randn(1, 32, 4, 4) * 1e-2
    sparse, dense = torch.randn(1, 2, 32) * 1e-2, torch.zeros(1, 32, 4, 4)
    with torch.no_grad():
        ref_default, _ = reference.predict_masks(emb, pe, sparse, dense)
        for layer in reference.transformer.layers:
            for norm in (layer.norm1, layer.norm2, layer.norm3, layer.norm4):
                norm.eps = 1e-6
        ref_hf, _ = reference.predict_masks(emb, pe, sparse, dense)
        got_hf, _ = ours.predict(emb, pe, sparse, dense)
        got_default, _ = default.predict(emb, pe, sparse, dense)
    torch.testing.assert_close(got_hf, ref_hf, atol=2e-7, rtol=0)
    torch.testing.assert_close(got_default, ref_default, atol=2e-7, rtol=0)
    assert (got_hf - got_default).abs().max() > 2e-6  # 10x the agreement above

"""MaskSAM's decoder adapters inside SAM's two-way transformer: placement and counts."""
import pytest
import torch

from mmsam.models import SAMMaskDecoder, SAMPromptEncoder
from mmsam.models.adapters import MaskSAMDecoderAdapter
from mmsam.models.utils.masked_two_way_transformer import two_way_transformer_forward

B, T, Q, C = 2, 2, 3, 32
N = B * T * Q
DECODER = dict(transformer_dim=C, transformer_mlp_dim=64, transformer_num_heads=2,
               iou_head_hidden_dim=32)


def _adapters(zero=False, **kwargs):
    return MaskSAMDecoderAdapter(
        num_frames=T, embed_dims=C,
        token_adapter=dict(type='DMLPAdapter', zero_init=zero),
        image_adapter=dict(type='DConvAdapter', zero_init=zero), **kwargs)


def _inputs(tiny_sam_checkpoint):
    torch.manual_seed(0)
    decoder = SAMMaskDecoder(checkpoint=tiny_sam_checkpoint, **DECODER).eval()
    decoder.init_weights()
    prompt_encoder = SAMPromptEncoder(embed_dim=C, img_size=64, patch_size=8,
                                      checkpoint=tiny_sam_checkpoint)
    prompt_encoder.init_weights()
    slices = torch.randn(B * T, C, 8, 8)
    embeddings = slices.repeat_interleave(Q, dim=0)  # item (b * T + t) * Q + q
    xy = torch.rand(N, 2) * 30
    boxes = torch.cat([xy, xy + 4 + torch.rand(N, 2) * 30], dim=1)
    with torch.no_grad():
        sparse, dense = prompt_encoder(points=None, boxes=boxes, masks=None)
    cls_token = torch.randn(N, 1, C)  # MaskSAM's class token rides as an extra sparse token
    sparse = torch.cat([sparse, cls_token], dim=1)
    return decoder, prompt_encoder.get_dense_pe(), embeddings, sparse, dense


def test_zero_adapters_and_depth_pe_reproduce_sam(tiny_sam, tiny_sam_checkpoint):
    decoder, pe, embeddings, sparse, dense = _inputs(tiny_sam_checkpoint)
    depth_pe = torch.zeros(T, C, 8, 8)
    item_pe = (pe + depth_pe).repeat(B, 1, 1, 1).repeat_interleave(Q, dim=0)
    adapters = _adapters(zero=True)
    ref = tiny_sam.mask_decoder
    with torch.no_grad():
        hs, src = decoder.decode_tokens(embeddings, item_pe, sparse, dense, adapters=adapters,
                                        layout=dict(num_queries=Q, hw=(8, 8)))
        masks, iou = decoder.masks_from_tokens(hs, decoder.upscale(src)[-1])
        out_tokens = torch.cat([ref.iou_token.weight, ref.mask_tokens.weight], dim=0)
        for i in range(N):
            ref_hs, _ = ref.transformer(embeddings[i:i + 1] + dense[i:i + 1], pe,
                                        torch.cat([out_tokens[None], sparse[i:i + 1]], dim=1))
            ref_masks, ref_iou = ref.predict_masks(embeddings[i:i + 1], pe, sparse[i:i + 1],
                                                   dense[i:i + 1])
            torch.testing.assert_close(hs[i:i + 1], ref_hs, atol=1e-5, rtol=0)
            torch.testing.assert_close(masks[i:i + 1], ref_masks, atol=1e-5, rtol=0)
            torch.testing.assert_close(iou[i:i + 1], ref_iou, atol=1e-5, rtol=0)
    assert hs.shape == (N, 1 + 4 + 3, C) and masks.shape == (N, 4, 32, 32)


def test_random_adapters_change_output_and_keep_cases_apart(tiny_sam_checkpoint):
    decoder, pe, embeddings, sparse, dense = _inputs(tiny_sam_checkpoint)
    adapters = _adapters()
    layout = dict(num_queries=Q, hw=(8, 8))
    with torch.no_grad():
        plain, _ = decoder.decode_tokens(embeddings, pe, sparse, dense)
        hs, src = decoder.decode_tokens(embeddings, pe, sparse, dense, adapters=adapters,
                                        layout=layout)
        assert not torch.allclose(hs, plain, atol=1e-3)
        moved = embeddings.clone()
        moved[T * Q:] += torch.randn_like(moved[T * Q:])  # case 1
        hs2, src2 = decoder.decode_tokens(moved, pe, sparse, dense, adapters=adapters,
                                          layout=layout)
    torch.testing.assert_close(hs2[:T * Q], hs[:T * Q], atol=1e-6, rtol=0)
    torch.testing.assert_close(src2[:T * Q], src[:T * Q], atol=1e-6, rtol=0)
    assert not torch.allclose(hs2[T * Q:], hs[T * Q:])


def test_every_site_is_used(tiny_sam):
    """Each adapter site alone changes the result (so none is silently skipped)."""
    transformer = tiny_sam.mask_decoder.transformer
    torch.manual_seed(0)
    emb, pe, tokens = torch.randn(N, C, 4, 4), torch.randn(N, C, 4, 4), torch.randn(N, 6, C)
    layout = dict(num_queries=Q)
    with torch.no_grad():
        base = two_way_transformer_forward(transformer, emb, pe, tokens)
        sites = [(i, s) for i in range(2) for s in ('self_attn', 'cross_t2i', 'mlp', 'cross_i2t')]
        for layer, site in sites + [(None, 'final_t2i')]:
            adapters = _adapters(zero=True)
            module = adapters.final_t2i if layer is None else adapters.layers[layer][site]
            module.fc2.weight.normal_()
            q, k = two_way_transformer_forward(transformer, emb, pe, tokens, adapters=adapters,
                                               layout=layout)
            assert not torch.allclose(q, base[0], atol=1e-4), (layer, site)
            if site == 'cross_i2t':  # the image path (keys) changes too
                assert not torch.allclose(k, base[1], atol=1e-4)
        no_final = _adapters(zero=True, final_attn=False)
        assert no_final.final_t2i is None
        q, _ = two_way_transformer_forward(transformer, emb, pe, tokens, adapters=no_final,
                                           layout=layout)
        torch.testing.assert_close(q, base[0], atol=1e-5, rtol=0)


def test_bad_calls_are_reported(tiny_sam, tiny_sam_checkpoint):
    decoder, pe, embeddings, sparse, dense = _inputs(tiny_sam_checkpoint)
    with pytest.raises(ValueError, match='image_pe has batch 2'):
        decoder.decode_tokens(embeddings, pe.expand(2, -1, -1, -1), sparse, dense)
    transformer = tiny_sam.mask_decoder.transformer
    emb, tokens = torch.randn(N, C, 4, 4), torch.randn(N, 6, C)
    with pytest.raises(ValueError, match='adapters have 3 layers'):
        two_way_transformer_forward(transformer, emb, emb, tokens, adapters=_adapters(depth=3))
    with pytest.raises(ValueError, match=r'num_queries \(5\)'):
        two_way_transformer_forward(transformer, emb, emb, tokens, adapters=_adapters(),
                                    layout=dict(num_queries=5))
    with pytest.raises(ValueError, match='skip'):
        MaskSAMDecoderAdapter(num_frames=T, token_adapter=dict(type='DMLPAdapter', skip=True))


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('frames,expected', [(26, 340398), (9, 306483), (4, 302668)])
def test_parameter_counts_match_spec(frames, expected):
    """Hand count: 7 DMLP(T) + 2 DConv(256) (Synapse T26, AMOS T9, ACDC T4)."""
    adapters = MaskSAMDecoderAdapter(num_frames=frames)
    dmlp = 33088 + 8 * frames ** 2 + 5 * frames
    dconv = 256 ** 2 // 2 + 256 + 31 * 256 // 4
    assert _count(adapters) == 7 * dmlp + 2 * dconv == expected
    assert adapters.layers[0]['cross_i2t'].hidden == 64
    assert {n.split('.')[0] for n, _ in adapters.named_parameters()} == {'layers', 'final_t2i'}
    assert set(adapters.layers[1]) == {'self_attn', 'cross_t2i', 'mlp', 'cross_i2t'}

import torch

from mmsam.models.utils.masked_two_way_transformer import (masked_attention, pad_token_mask,
                                                           two_way_transformer_forward)


def test_no_mask_and_all_ones_equal_segment_anything(tiny_sam):
    transformer = tiny_sam.mask_decoder.transformer
    emb, pe, tokens = torch.randn(2, 32, 8, 8), torch.randn(2, 32, 8, 8), torch.randn(2, 5, 32)
    with torch.no_grad():
        ref_q, ref_k = transformer(emb, pe, tokens)
        for mask, mode in ((None, 'learnable'), (torch.ones(2, 5, 64), 'learnable'),
                           (torch.ones(2, 5, 64), 'binary')):
            q, k = two_way_transformer_forward(transformer, emb, pe, tokens, mask, mode)
            torch.testing.assert_close(q, ref_q, atol=1e-5, rtol=0)
            torch.testing.assert_close(k, ref_k, atol=1e-5, rtol=0)


def test_learnable_mask_scales_attention_and_passes_gradient(tiny_sam):
    attention = tiny_sam.mask_decoder.transformer.final_attn_token_to_image
    q, k, v = torch.randn(1, 3, 32), torch.randn(1, 10, 32), torch.randn(1, 10, 32)
    zero_row = torch.ones(1, 3, 10)
    zero_row[0, 1] = 0
    out = masked_attention(attention, q, k, v, zero_row)
    # A token masked everywhere receives nothing but the output projection's bias.
    torch.testing.assert_close(out[0, 1], attention.out_proj.bias)
    mask = torch.rand(1, 3, 10, requires_grad=True)
    masked_attention(attention, q, k, v, mask).sum().backward()
    assert mask.grad.abs().sum() > 0


def test_binary_mask_blocks_positions_and_unblocks_empty_rows(tiny_sam):
    attention = tiny_sam.mask_decoder.transformer.final_attn_token_to_image
    q, k, v = torch.randn(1, 2, 32), torch.randn(1, 4, 32), torch.randn(1, 4, 32)
    mask = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    out = masked_attention(attention, q, k, v, mask, mode='binary')
    only_first = attention.out_proj(attention.v_proj(v[:, :1]))
    torch.testing.assert_close(out[0, 0], only_first[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 1], masked_attention(attention, q, k, v)[0, 1])


def test_pad_token_mask_puts_class_masks_on_mask_tokens():
    class_mask = torch.rand(2, 3, 6)
    mask = pad_token_mask(class_mask, num_tokens=6)
    assert mask.shape == (2, 6, 6)
    assert torch.equal(mask[:, 1:4], class_mask)
    assert torch.equal(mask[:, 0], torch.ones(2, 6)) and torch.equal(mask[:, 4:], torch.ones(2, 2, 6))

import torch

from mmsam.models import SAMMaskDecoder, SAMPromptEncoder

DECODER = dict(transformer_dim=32, transformer_mlp_dim=64, transformer_num_heads=2,
               iou_head_hidden_dim=32)


def _decoder(checkpoint, **kwargs):
    decoder = SAMMaskDecoder(checkpoint=checkpoint, **DECODER, **kwargs).eval()
    decoder.init_weights()
    return decoder


def test_batched_predict_equals_segment_anything_per_image(tiny_sam, tiny_sam_checkpoint):
    decoder = _decoder(tiny_sam_checkpoint)
    prompt_encoder = SAMPromptEncoder(embed_dim=32, img_size=64, patch_size=8,
                                      checkpoint=tiny_sam_checkpoint)
    prompt_encoder.init_weights()
    embeddings = torch.randn(2, 32, 8, 8)
    boxes = torch.tensor([[4.0, 6.0, 40.0, 50.0], [10.0, 3.0, 30.0, 60.0]])
    with torch.no_grad():
        sparse, dense = prompt_encoder(points=None, boxes=boxes, masks=None)
        ref_sparse, ref_dense = tiny_sam.prompt_encoder(points=None, boxes=boxes, masks=None)
        torch.testing.assert_close(sparse, ref_sparse)
        masks, iou = decoder.predict(embeddings, prompt_encoder.get_dense_pe(), sparse, dense)
        for i in range(2):
            ref_masks, ref_iou = tiny_sam.mask_decoder.predict_masks(
                embeddings[i:i + 1], tiny_sam.prompt_encoder.get_dense_pe(), sparse[i:i + 1],
                dense[i:i + 1])
            torch.testing.assert_close(masks[i:i + 1], ref_masks, atol=1e-5, rtol=0)
            torch.testing.assert_close(iou[i:i + 1], ref_iou, atol=1e-5, rtol=0)
    assert masks.shape == (2, 4, 32, 32)


def test_more_mask_tokens_copy_sams_four_and_keep_the_rest(tiny_sam, tiny_sam_checkpoint):
    torch.manual_seed(1)
    fresh = SAMMaskDecoder(**DECODER, num_multimask_outputs=8).state_dict()
    torch.manual_seed(1)
    decoder = _decoder(tiny_sam_checkpoint, num_multimask_outputs=8)
    ref = tiny_sam.mask_decoder.state_dict()
    assert torch.equal(decoder.mask_tokens.weight[:4], ref['mask_tokens.weight'])
    assert torch.equal(decoder.mask_tokens.weight[4:], fresh['mask_tokens.weight'][4:])
    assert torch.equal(decoder.iou_prediction_head.layers[2].weight[:4],
                       ref['iou_prediction_head.layers.2.weight'])
    for i in range(9):
        key = f'output_hypernetworks_mlps.{i}.layers.0.weight'
        expected = ref[key] if i < 4 else fresh[key]
        assert torch.equal(decoder.state_dict()[key], expected), i
    assert torch.equal(decoder.transformer.layers[0].self_attn.q_proj.weight,
                       ref['transformer.layers.0.self_attn.q_proj.weight'])


def test_fewer_mask_tokens_drop_surplus_heads(tiny_sam, tiny_sam_checkpoint):
    decoder = _decoder(tiny_sam_checkpoint, num_multimask_outputs=1)
    ref = tiny_sam.mask_decoder.state_dict()
    assert torch.equal(decoder.mask_tokens.weight, ref['mask_tokens.weight'][:2])

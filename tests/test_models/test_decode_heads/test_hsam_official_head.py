"""H-SAM's official network in mmsam (HSAMHead with the official switches, its components),
tested against segment-anything's modules and values worked by hand; the full model is
checked against the official code's outputs in tests/test_tools/test_hsam_official.py."""
import math

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from segment_anything.modeling.transformer import Attention

from mmsam.models.utils import (HSAMClassMapAttention, HSAMMaskDecoder, HSAMMaskedAttention,
                                SAMMaskDecoder)
from mmsam.registry import MODELS

IMG, DIM = 64, 32  # 16-pixel patches: a 4 x 4 embedding grid, CMAttn tokens 16 wide
DECODER = dict(transformer_dim=DIM, transformer_mlp_dim=64, transformer_num_heads=2,
               iou_head_hidden_dim=32)
OFFICIAL = dict(
    type='HSAMHead', num_classes=3, attention_heads=2, cmattn_mode='official',
    cmattn_weighting='softmax', cmattn_mlp_dim=48, prior_resize='bilinear',
    stage_fusion='logits',
    prompt_encoder=dict(type='HSAMPromptEncoder', embed_dim=DIM, img_size=IMG, patch_size=16),
    mask_decoder=dict(type='HSAMMaskDecoder', block_order='cross_first', **DECODER),
    stage2_decoder=dict(type='HSAMStage2Decoder', **DECODER),
    loss_decode=[dict(type='CrossEntropyLoss', loss_weight=0.1, loss_name='loss_ce'),
                 dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice')])


def _head(**kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(OFFICIAL, **kwargs))


def _samples(batch=2):
    samples = []
    for i in range(batch):
        label = torch.zeros(1, IMG, IMG, dtype=torch.long)
        label[0, 5:30, 10 + i:40] = 1
        label[0, 40:50, 20:46] = 2
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG)))
        samples.append(sample)
    return samples


def _feats(batch=2):
    torch.manual_seed(3)
    return (torch.randn(batch, DIM, 4, 4), )


def test_sam_block_order_is_segment_anythings_decoder():
    torch.manual_seed(0)
    sam = SAMMaskDecoder(num_multimask_outputs=3, **DECODER)
    ours = HSAMMaskDecoder(block_order='sam', num_multimask_outputs=3, **DECODER)
    ours.load_state_dict(sam.state_dict())
    official = HSAMMaskDecoder(block_order='cross_first', num_multimask_outputs=3, **DECODER)
    official.load_state_dict(sam.state_dict())
    emb, pe = torch.randn(2, DIM, 4, 4), torch.randn(1, DIM, 4, 4)
    sparse, dense = torch.zeros(2, 0, DIM), torch.randn(1, DIM, 4, 4)
    ref = sam.decode_tokens(emb, pe, sparse, dense)
    got = ours.decode_tokens(emb, pe, sparse, dense)
    assert all(torch.equal(a, b) for a, b in zip(ref, got))
    other = official.decode_tokens(emb, pe, sparse, dense)
    assert (other[0] - ref[0]).abs().max() > 1e-2  # the order matters
    with pytest.raises(ValueError, match='block_order'):
        HSAMMaskDecoder(block_order='self_first')


def test_masked_attention_is_sam_attention_times_the_prior():
    torch.manual_seed(0)
    attn = HSAMMaskedAttention(DIM, 1)
    assert [attn.norm1.normalized_shape, attn.norm3.normalized_shape] == [(196,), (1024,)]
    ref = Attention(DIM, 1)  # segment-anything, no downsampling
    ref.load_state_dict({k: v for k, v in attn.state_dict().items() if 'norm' not in k})
    tokens, image = torch.randn(2, 3, DIM), torch.randn(2, 16, DIM)
    assert torch.allclose(attn(tokens, image, image), ref(q=tokens, k=image, v=image),
                          atol=1e-6)
    mask = torch.rand(2, 3, 16)
    # by hand, one head: softmax(q k^T / sqrt(d)) * M, not renormalised
    q, k, v = attn.q_proj(tokens), attn.k_proj(image), attn.v_proj(image)
    probs = (q @ k.transpose(1, 2) / math.sqrt(DIM)).softmax(-1)
    expected = attn.out_proj((probs * mask) @ v)
    assert torch.allclose(attn(tokens, image, image, mask=mask), expected, atol=1e-6)
    # image-to-token attention: the queries are positions, the mask is transposed
    q, k, v = attn.q_proj(image), attn.k_proj(tokens), attn.v_proj(tokens)
    probs = (q @ k.transpose(1, 2) / math.sqrt(DIM)).softmax(-1)
    expected = attn.out_proj((probs * mask.transpose(1, 2)) @ v)
    got = attn(image, tokens, tokens, mask=mask, mask_on_keys=True)
    assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize('train', [False, True])
def test_official_cmattn_is_a_constant_doubling(train):
    """Its softmax runs over a single channel: 1 everywhere, whatever the weights, noise or
    dropout; its weights get no gradient."""
    torch.manual_seed(0)
    block = HSAMClassMapAttention(3, 16, num_heads=2, mlp_dim=48).train(train)
    src = torch.randn(2, DIM, 4, 4)
    feature = torch.randn(2, 3, 16, requires_grad=True)
    labels = torch.randint(0, 3, (2, 16, 16))
    out = block(src, feature, labels)
    assert torch.equal(out, 2 * src)
    out.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in block.parameters())
    tanh = HSAMClassMapAttention(3, 16, num_heads=2, mlp_dim=48, weighting='tanh').train(train)
    out = tanh(src, feature, labels)
    assert not torch.equal(out, 2 * src)
    out.sum().backward()
    assert tanh.med_sel[0].weight.grad.abs().sum() > 0


def test_official_class_balanced_noise_ranks_the_batch_labels():
    """Rarest label first: std 0.35, then 0.3, ...; a label with std 0 gets only the mean."""
    block = HSAMClassMapAttention(3, 16, num_heads=2, mlp_dim=48,
                                  noise_stds=(0.5, 0.0, 0.0))
    feature = torch.full((1, 3, 16), 2.0)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, :3] = 1  # the first 16 entries (official flat prefix): 3 ones, 13 zeros
    torch.manual_seed(0)
    out = block.add_noise(feature, labels)
    rare = labels.reshape(1, 1, 16).expand(1, 3, 16) == 1
    assert torch.equal(out[~rare], torch.full_like(out[~rare], 4.0))  # + mean 2, std 0
    assert not torch.equal(out[rare], torch.full_like(out[rare], 4.0))


def test_official_head_shapes_keys_and_switches():
    head = _head()
    logits1, logits2 = head(_feats())
    assert logits1.shape == (2, 3, 16, 16) and logits2.shape == (2, 3, IMG, IMG)
    keys = head.state_dict()
    assert 'stage2_decoder.iou_token.weight' not in keys  # no IoU token in stage 2
    assert keys['stage2_decoder.output_hypernetworks_mlps.0.layers.4.weight'].shape == (2, DIM)
    assert keys['stage2_decoder.skip_connect.3.weight'].shape == (DIM // 8, DIM // 16, 2, 2)
    assert keys['stage2_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight'] \
        .shape == (DIM, DIM)  # Attention2: no downsampling
    assert keys['stage2_decoder.transformer.final_attn_token_to_image.q_proj.weight'].shape == (
        DIM // 2, DIM)
    assert len(head.prompt_encoder.point_embeddings) == 11
    assert 'class_counts' not in keys
    _, plain = _head(hierarchical_pixel_decoder=False)(_feats())
    assert plain.shape == (2, 3, 16, 16)
    for mode in ('binary', None):
        assert _head(mask_cross_attention=mode)(_feats())[1].shape == (2, 3, IMG, IMG)
    with pytest.raises(ValueError, match="cmattn_mode='official'"):
        _head(cmattn_mode='class_tokens')


def test_official_prior_is_the_softmax_of_bilinear_logits(monkeypatch):
    head = _head()
    logits = torch.randn(2, 3, 16, 16)
    expected = torch.nn.functional.interpolate(logits, size=(4, 4), mode='bilinear',
                                               align_corners=False).softmax(1)
    assert torch.equal(head.prior_mask(logits, (4, 4)), expected)
    area = _head(prior_resize='area').prior_mask(logits, (4, 4))
    assert torch.allclose(area, torch.nn.functional.avg_pool2d(logits.softmax(1), 4))


def test_official_head_trains_and_fuses_logits():
    head = _head().train()
    losses = head.loss(_feats(), _samples(), None)
    total = losses['loss_ce'] + losses['loss_dice']
    total.backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    for part in ('mask_decoder.mask_tokens.weight', 'stage2_decoder.mask_tokens.weight',
                 'stage2_decoder.skip_connect.0.weight'):
        assert grads[part].abs().sum() > 0, part
    head.eval()
    logits1, logits2 = head(_feats())
    up = torch.nn.functional.interpolate(logits1, size=(IMG, IMG), mode='bilinear',
                                         align_corners=False)
    assert torch.allclose(head.fuse_stages(logits1, logits2), (up + logits2) / 2)

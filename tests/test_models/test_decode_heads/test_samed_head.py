import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.registry import MODELS

HEAD = dict(
    type='SAMedHead', num_classes=4,
    prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=32, img_size=64, patch_size=8),
    mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=32, transformer_mlp_dim=64,
                      transformer_num_heads=2, iou_head_hidden_dim=32),
    loss_decode=[dict(type='CrossEntropyLoss', loss_weight=0.2, loss_name='loss_ce'),
                 dict(type='MultiClassDiceLoss', loss_weight=0.8, loss_name='loss_dice')])


def _samples(batch, size=64):
    samples = []
    for i in range(batch):
        label = torch.zeros(1, size, size, dtype=torch.long)
        label[0, 10 + i:30, 20:40] = 1 + i % 3
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        samples.append(sample)
    return samples


def test_samed_head_outputs_one_map_per_class_at_quarter_resolution():
    head = MODELS.build(HEAD)
    assert head.mask_decoder.num_mask_tokens == 4
    logits = head((torch.randn(3, 32, 8, 8),))
    assert logits.shape == (3, 4, 32, 32)


def test_samed_loss_is_weighted_ce_plus_dice_at_logit_resolution():
    head = MODELS.build(HEAD)
    samples = _samples(2)
    feats = (torch.randn(2, 32, 8, 8),)
    losses = head.loss(feats, samples, None)
    logits = head(feats)
    label = torch.nn.functional.interpolate(
        torch.stack([s.gt_sem_seg.data for s in samples]).float(), size=(32, 32),
        mode='nearest').squeeze(1).long()
    ce = torch.nn.functional.cross_entropy(logits, label)
    torch.testing.assert_close(losses['loss_ce'], 0.2 * ce, atol=1e-5, rtol=1e-4)
    assert 0 < losses['loss_dice'] < 0.8
    (losses['loss_ce'] + losses['loss_dice']).backward()
    assert head.mask_decoder.mask_tokens.weight.grad.abs().sum() > 0


def test_num_multimask_outputs_is_derived_not_configured():
    cfg = dict(HEAD, mask_decoder=dict(HEAD['mask_decoder'], num_multimask_outputs=3))
    with pytest.raises(ValueError, match='num_multimask_outputs'):
        MODELS.build(cfg)

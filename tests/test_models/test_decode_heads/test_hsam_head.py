import pytest
import torch
from conftest import TINY_ARCH
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.engine.hooks import StageLossWeightHook
from mmsam.registry import MODELS

IMG = 64
HEAD = dict(
    type='HSAMHead', num_classes=4, attention_heads=2,
    prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=32, img_size=IMG, patch_size=8),
    mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=32, transformer_mlp_dim=64,
                      transformer_num_heads=2, iou_head_hidden_dim=32),
    loss_decode=[dict(type='CrossEntropyLoss', loss_weight=0.1, loss_name='loss_ce'),
                 dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice')])
SWITCHES = dict(mask_guided_self_attention=False, class_balance=False,
                mask_cross_attention=None, hierarchical_pixel_decoder=False)


def _head(**switches):
    torch.manual_seed(0)
    head = MODELS.build(dict(HEAD, **switches))
    with torch.no_grad():  # CMAttn starts as the identity; make it act
        if head.cmattn is not None:
            head.cmattn.compress.weight.normal_()
    return head


def _samples(batch=2):
    samples = []
    for i in range(batch):
        label = torch.zeros(1, IMG, IMG, dtype=torch.long)
        label[0, 5:30, 10 + i:40] = 1
        label[0, 40:44, 40:46] = 3
        label[0, 33:38, 5:60] = 2
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG)))
        samples.append(sample)
    return samples


def test_output_shapes():
    head = _head()
    logits1, logits2 = head((torch.randn(2, 32, 8, 8),))
    assert logits1.shape == (2, 4, 32, 32)  # 4x the 8x8 embedding grid
    assert logits2.shape == (2, 4, IMG, IMG)  # full input resolution
    _, plain = _head(hierarchical_pixel_decoder=False)((torch.randn(2, 32, 8, 8),))
    assert plain.shape == (2, 4, 32, 32)


@pytest.mark.parametrize('switch', ['mask_guided_self_attention', 'mask_cross_attention',
                                    'hierarchical_pixel_decoder'])
def test_each_switch_changes_the_forward(switch):
    feats = (torch.randn(2, 32, 8, 8),)
    off = {switch: SWITCHES[switch]}
    if switch == 'mask_guided_self_attention':
        off['class_balance'] = False
    full, reduced = _head().eval(), _head(**off).eval()
    reduced.load_state_dict(full.state_dict(), strict=False)
    with torch.no_grad():
        out_full, out_reduced = full(feats)[1], reduced(feats)[1]
    if out_full.shape != out_reduced.shape:
        out_reduced = torch.nn.functional.interpolate(out_reduced, size=out_full.shape[-2:])
    assert not torch.allclose(out_full, out_reduced, atol=1e-4)
    # Stage 1 does not depend on any switch.
    with torch.no_grad():
        torch.testing.assert_close(full(feats)[0], reduced(feats)[0])


def test_binary_mask_attention_differs_from_learnable():
    feats = (torch.randn(1, 32, 8, 8),)
    learnable, binary = _head().eval(), _head(mask_cross_attention='binary').eval()
    with torch.no_grad():
        assert not torch.allclose(learnable(feats)[1], binary(feats)[1], atol=1e-4)


def test_class_balance_adds_noise_only_in_training():
    feats = (torch.randn(2, 32, 8, 8),)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in _samples()])
    head = _head()
    head.class_counts += torch.tensor([1000.0, 100.0, 10.0, 1.0], dtype=torch.float64)
    head.train()
    torch.manual_seed(1)
    a = head(feats, labels=labels)[1]
    torch.manual_seed(2)
    b = head(feats, labels=labels)[1]
    assert not torch.allclose(a, b)
    head.eval()
    torch.testing.assert_close(head(feats, labels=labels)[1], head(feats)[1])
    no_balance = _head(class_balance=False).train()
    torch.testing.assert_close(no_balance(feats, labels=labels)[1],
                               no_balance(feats, labels=labels)[1])


def test_noise_variance_is_inversely_proportional_to_frequency():
    head = _head()
    std = head.cmattn.noise_std(torch.tensor([0.9, 0.05, 0.04, 0.01]))
    torch.testing.assert_close(std ** 2, 0.1 * 0.01 / torch.tensor([0.9, 0.05, 0.04, 0.01]))


def test_loss_weights_the_two_stages():
    head = _head()
    samples = _samples()
    feats = (torch.randn(2, 32, 8, 8),)
    head.stage1_weight = 1.0
    torch.manual_seed(0)
    only_stage1 = head.loss(feats, samples, None)
    head.stage1_weight = 0.0
    torch.manual_seed(0)
    only_stage2 = head.loss(feats, samples, None)
    head.stage1_weight = 0.25
    torch.manual_seed(0)
    mixed = head.loss(feats, samples, None)
    for key in ('loss_ce', 'loss_dice'):
        torch.testing.assert_close(mixed[key], 0.25 * only_stage1[key] + 0.75 * only_stage2[key])
    assert mixed['stage1_weight'].item() == 0.25


def test_predict_averages_stage_probabilities():
    head = _head().eval()
    feats = (torch.randn(1, 32, 8, 8),)
    with torch.no_grad():
        logits1, logits2 = head(feats)
        out = head.predict(feats, _samples(1), None)
    up1 = torch.nn.functional.interpolate(logits1, size=(IMG, IMG), mode='bilinear')
    expected = (up1.softmax(1) + logits2.softmax(1)) / 2
    torch.testing.assert_close(out.exp(), expected, atol=1e-5, rtol=1e-4)


def test_bad_switches():
    with pytest.raises(ValueError, match='mask_cross_attention'):
        MODELS.build(dict(HEAD, mask_cross_attention='soft'))
    with pytest.raises(ValueError, match='class_balance'):
        MODELS.build(dict(HEAD, mask_guided_self_attention=False, class_balance=True))


def test_stage_loss_weight_schedules():
    supplementary = StageLossWeightHook(start=0.4, decay=0.01)
    assert supplementary.weight_at(0) == pytest.approx(0.4)
    assert supplementary.weight_at(1) == pytest.approx(1 - 0.6 ** 0.99)
    assert supplementary.weight_at(300) == pytest.approx(1 - 0.6 ** (0.99 ** 300))
    assert supplementary.weight_at(300) < 0.03
    main_text = StageLossWeightHook(start=0.8, decay=0.005)
    assert main_text.weight_at(0) == pytest.approx(0.8)
    assert main_text.weight_at(100) == pytest.approx(1 - 0.2 ** (0.995 ** 100))
    with pytest.raises(ValueError, match='start'):
        StageLossWeightHook(start=1.5)


def test_gradient_reaches_lora_and_both_stages_not_the_frozen_encoder():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SAMSegmentor',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
                               size=(IMG, IMG)),
        backbone=dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=IMG, frozen=True,
                      adapter=dict(type='LoRA', rank=2)),
        decode_head=HEAD))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'lora_b' in name:
                param.normal_()
    inputs = torch.randn(2, 3, IMG, IMG)
    losses = model.loss(inputs, _samples())
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if 'lora_' in n)
    assert all(g is None for n, g in grads.items() if n.startswith('backbone.')
               and 'lora_' not in n)
    for stage in ('decode_head.mask_decoder.', 'decode_head.stage2_decoder.'):
        assert grads[f'{stage}mask_tokens.weight'].abs().sum() > 0, stage
    assert grads['decode_head.cmattn.compress.weight'].abs().sum() > 0
    assert grads['decode_head.full_res_upscaling.0.weight'].abs().sum() > 0


def test_sam_patch_16_reaches_full_resolution_in_two_steps():
    """ViT-B/L/H use 16-pixel patches: stage 2 upsamples the grid 16x, stage 1 4x."""
    head = MODELS.build(dict(HEAD, prompt_encoder=dict(HEAD['prompt_encoder'], patch_size=16)))
    assert len([m for m in head.full_res_upscaling if isinstance(m, torch.nn.ConvTranspose2d)]) == 2
    logits1, logits2 = head((torch.randn(1, 32, 4, 4),))
    assert logits1.shape == (1, 4, 16, 16) and logits2.shape == (1, 4, IMG, IMG)

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_ARCH
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.models.decode_heads import hsam_head
from mmsam.models.utils.class_balanced_mask_attention import add_class_balanced_noise
from mmsam.registry import MODELS

IMG = 64
HEAD = dict(
    type='HSAMHead', num_classes=4, attention_heads=2,
    prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=32, img_size=IMG, patch_size=8),
    mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=32, transformer_mlp_dim=64,
                      transformer_num_heads=2, iou_head_hidden_dim=32),
    loss_decode=[dict(type='CrossEntropyLoss', loss_weight=0.1, loss_name='loss_ce'),
                 dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice')])


def _head(**kwargs):
    torch.manual_seed(0)
    head = MODELS.build(dict(HEAD, **kwargs))
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


def _feats(batch=2, seed=3):
    torch.manual_seed(seed)
    return (torch.randn(batch, 32, 8, 8), )


def test_mask_cross_attention_only_multiplies_token_to_image_attention(monkeypatch):
    """With the prior M forced to 1 the learnable mask attention is plain cross-attention
    (M * softmax(KQ^T) V + X with M = 1); with stage 1's prior it is not."""
    feats = _feats()
    learnable, plain = _head().eval(), _head(mask_cross_attention=None).eval()
    with torch.no_grad():
        guided = learnable(feats)[1]
        reference = plain(feats)[1]
        assert (guided - reference).abs().max() > 1e-3
        monkeypatch.setattr(hsam_head, 'pad_token_mask',
                            lambda masks, num_tokens: masks.new_ones(
                                masks.shape[0], num_tokens, masks.shape[2]))
        torch.testing.assert_close(learnable(feats)[1], reference)
        # stage 1 never depends on the switch
        torch.testing.assert_close(learnable(feats)[0], plain(feats)[0])


def test_hierarchical_pixel_decoder_adds_stage1_features():
    """Stage 2's pixel decoder is SAM's with stage 1's 1/2 and 1/4 features added after its
    two transposed convolutions: zero skips give SAM's decoder (then the extra upsampling)."""
    head = _head().eval()
    up = head.stage2_decoder.output_upscaling
    torch.manual_seed(1)
    src = torch.randn(2, 32, 8, 8)
    half1, quarter1 = torch.randn(2, 8, 16, 16), torch.randn(2, 4, 32, 32)
    seen = {}

    def record(name):
        def hook(module, args):
            seen[name] = args[0].clone()
        return hook

    with torch.no_grad():
        zero = head._stage2_pixels(src, torch.zeros_like(half1), torch.zeros_like(quarter1))
        torch.testing.assert_close(zero, head.full_res_upscaling(up(src)))
        # where the skips enter: the LayerNorm after the first transposed conv gets that
        # conv's output (computed here with F.conv_transpose2d) plus the 1/2 features; the
        # GELU after the second gets its conv's output plus the 1/4 features
        hooks = [up[1].register_forward_pre_hook(record('norm')),
                 up[3].register_forward_pre_hook(record('conv2_in')),
                 up[4].register_forward_pre_hook(record('gelu'))]
        head._stage2_pixels(src, half1, quarter1)
        for h in hooks:
            h.remove()
        conv1 = F.conv_transpose2d(src, up[0].weight, up[0].bias, stride=2)
        torch.testing.assert_close(seen['norm'], conv1 + half1)
        conv2 = F.conv_transpose2d(seen['conv2_in'], up[3].weight, up[3].bias, stride=2)
        torch.testing.assert_close(seen['gelu'], conv2 + quarter1)
    # the stage-2 loss reaches stage 1's pixel decoder only through these skips
    head.train()
    head.stage1_weight = 0.0
    head.loss(_feats(), _samples(), None)['loss_ce'].backward()
    assert head.mask_decoder.output_upscaling[0].weight.grad.abs().sum() > 0
    flat = _head(hierarchical_pixel_decoder=False, mask_cross_attention=None)  # no prior
    flat.stage1_weight = 0.0
    flat.loss(_feats(), _samples(), None)['loss_ce'].backward()
    grad = flat.mask_decoder.output_upscaling[0].weight.grad
    assert grad is None or grad.abs().sum() == 0


def test_class_token_cmattn_is_a_bounded_per_position_reweighting():
    low, high = 0.0, 2.0  # 1 + tanh
    head = _head(class_balance=False).eval()
    assert head.cmattn.attn1.embed_dim == 64  # tokens are the C maps, each h * w = 8 * 8 wide
    with torch.no_grad():
        head.cmattn.compress.weight.mul_(1e3)  # drive the gate to its bounds
        embedding = _feats()[0]
        mask_feature = torch.randn(2, 4, 8, 8) * 5
        out = head.cmattn(embedding, mask_feature)
    factor = out / embedding
    # one weight per position, shared by all D channels, in (low, high): the sign never flips
    torch.testing.assert_close(factor, factor[:, :1].expand_as(factor))
    assert factor.min() >= low - 1e-5 and factor.max() <= high + 1e-5
    assert (out * embedding >= 0).all()  # scaled towards 0 at most, never past it
    fresh = MODELS.build(HEAD).cmattn
    start = fresh(embedding, mask_feature)  # compress starts at zero: the identity
    torch.testing.assert_close(start, embedding)


def test_spatial_cmattn_attends_over_positions_and_scales_by_one_plus_weight():
    """cmattn_mode='spatial': a fresh block is the identity; ``E * w + E`` with one weight per
    position (a bias-only compress layer of 0.5 gives 1.5 E); attention over the h * w
    positions, so permuting the positions (embedding, mask feature and positional encoding
    alike) permutes the output the same way."""
    head = MODELS.build(dict(HEAD, cmattn_mode='spatial')).eval()
    cmattn = head.cmattn
    torch.manual_seed(0)
    embedding, mask_feature = torch.randn(2, 32, 8, 8), torch.randn(2, 4, 8, 8)
    pe = torch.randn(1, 32, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(cmattn(embedding, mask_feature, pe), embedding)
        cmattn.compress.bias.fill_(0.5)
        torch.testing.assert_close(cmattn(embedding, mask_feature, pe), 1.5 * embedding)
        cmattn.compress.weight.normal_()
        out = cmattn(embedding, mask_feature, pe)
        factor = out / embedding
        torch.testing.assert_close(factor, factor[:, :1].expand_as(factor))  # shared by D
        perm = torch.randperm(64)

        def shuffle(x):
            return x.flatten(2)[..., perm].reshape(x.shape)

        torch.testing.assert_close(
            cmattn(shuffle(embedding), shuffle(mask_feature), shuffle(pe)), shuffle(out),
            atol=1e-5, rtol=1e-4)
        assert (factor - factor.mean()).abs().max() > 1e-3  # the weights vary by position


def test_class_balanced_noise_lands_on_each_gt_class_with_its_variance():
    """var(i) = 0.1 * f_min / f_i on every channel of the pixels of class i, 0 where ignored."""
    head = _head()
    freq = torch.tensor([0.7, 0.2, 0.08, 0.02], dtype=torch.float64)
    std = head.cmattn.noise_std(freq)
    torch.testing.assert_close(std ** 2, 0.1 * 0.02 / freq)
    labels = torch.zeros(64, 16, 16, dtype=torch.long)
    labels[:, :4] = 1
    labels[:, 4:8] = 2
    labels[:, 8:12] = 3
    labels[:, 12:14] = 255
    torch.manual_seed(0)
    noise = add_class_balanced_noise(torch.zeros(64, 4, 16, 16), labels, std.float())
    for cls in range(4):
        values = noise.permute(1, 0, 2, 3)[:, labels == cls]  # (C, pixels of class cls)
        assert values.var(dim=1).sub(std[cls].item() ** 2).abs().max() < 0.1 * std[cls] ** 2
    assert (noise.permute(1, 0, 2, 3)[:, labels == 255] == 0).all()


def test_training_noise_only_in_training_and_as_configured():
    feats = _feats()
    labels = torch.stack([s.gt_sem_seg.data[0] for s in _samples()])
    head = _head(class_balance=False, embedding_noise=0.0).train()
    torch.testing.assert_close(head(feats, labels=labels)[1], head(feats, labels=labels)[1])
    head = _head()
    head.class_counts += torch.tensor([1000.0, 100.0, 10.0, 1.0], dtype=torch.float64)
    head.train()
    assert not torch.allclose(head(feats, labels=labels)[1], head(feats, labels=labels)[1])
    head.eval()
    torch.testing.assert_close(head(feats, labels=labels)[1], head(feats)[1])


def test_embedding_noise_std_is_a_fifth_of_the_range():
    head = _head().train()
    embedding = torch.linspace(-2, 3, 32 * 8 * 8 * 8).reshape(8, 32, 8, 8)
    torch.manual_seed(0)
    noise = head.perturb_embedding(embedding) - embedding
    assert noise.std().item() == pytest.approx(0.2 * 5.0, rel=0.03)
    assert noise.mean().abs().item() < 0.03
    head.eval()
    assert head.perturb_embedding(embedding) is embedding
    with pytest.raises(ValueError, match='embedding_noise'):
        MODELS.build(dict(HEAD, embedding_noise=-1))


def test_stage1_loss_at_quarter_and_stage2_at_full_resolution():
    head = _head().eval()  # eval: no noise, so both forwards agree
    samples, feats = _samples(), _feats()
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    with torch.no_grad():
        logits1, logits2 = head(feats)
        quarter = labels[:, ::2, ::2]  # nearest resize of 64 -> 32 takes every other pixel
        head.stage1_weight = 1.0
        only1 = head.loss(feats, samples, None)
        head.stage1_weight = 0.0
        only2 = head.loss(feats, samples, None)
        head.stage1_weight = 0.25
        mixed = head.loss(feats, samples, None)
    torch.testing.assert_close(only1['loss_ce'], 0.1 * F.cross_entropy(logits1, quarter))
    torch.testing.assert_close(only2['loss_ce'], 0.1 * F.cross_entropy(logits2, labels))
    for key in ('loss_ce', 'loss_dice'):
        torch.testing.assert_close(mixed[key], 0.25 * only1[key] + 0.75 * only2[key])
    assert mixed['stage1_weight'].item() == 0.25


@pytest.mark.parametrize('fusion', ['probs', 'logits'])
def test_predict_fuses_the_stages(fusion):
    head = _head(stage_fusion=fusion).eval()
    feats = _feats(1)
    with torch.no_grad():
        logits1, logits2 = head(feats)
        out = head.predict(feats, _samples(1), None)
    up1 = F.interpolate(logits1, size=(IMG, IMG), mode='bilinear')
    if fusion == 'probs':  # paper: mean of the probabilities
        torch.testing.assert_close(out.exp(), (up1.softmax(1) + logits2.softmax(1)) / 2,
                                   atol=1e-5, rtol=1e-4)
    else:  # official test.py: mean of the logits
        torch.testing.assert_close(out, (up1 + logits2) / 2)


def test_bad_options():
    with pytest.raises(ValueError, match='mask_cross_attention'):
        MODELS.build(dict(HEAD, mask_cross_attention='soft'))
    with pytest.raises(ValueError, match='class_balance'):
        MODELS.build(dict(HEAD, mask_guided_self_attention=False, class_balance=True))
    with pytest.raises(ValueError, match='cmattn_mode'):
        MODELS.build(dict(HEAD, cmattn_mode='channels'))
    with pytest.raises(ValueError, match='attention_heads=3 must divide'):
        MODELS.build(dict(HEAD, attention_heads=3))
    with pytest.raises(ValueError, match='cmattn_weighting'):  # 'sigmoid' was removed
        MODELS.build(dict(HEAD, cmattn_weighting='sigmoid'))


def test_sam_weights_load_without_the_class_token_parts(tiny_sam, tiny_sam_checkpoint):
    """As the official loaders: SAM's transformer and pixel decoder load into stage 1; mask
    tokens, hypernetworks and IoU head start fresh; stage 2 loads nothing."""
    ckpt = tiny_sam_checkpoint
    head = MODELS.build(dict(
        HEAD,
        prompt_encoder=dict(HEAD['prompt_encoder'], checkpoint=ckpt),
        mask_decoder=dict(HEAD['mask_decoder'], checkpoint=ckpt)))
    head.init_weights()
    sam = tiny_sam.mask_decoder.state_dict()
    for name, decoder, loads in (('stage 1', head.mask_decoder, True),
                                 ('stage 2', head.stage2_decoder, False)):
        ours = decoder.state_dict()
        for key in ('transformer.layers.0.self_attn.q_proj.weight', 'output_upscaling.0.weight',
                    'iou_token.weight'):
            assert torch.equal(ours[key], sam[key]) == loads, (name, key)
        for key in ('mask_tokens.weight', 'output_hypernetworks_mlps.0.layers.0.weight',
                    'iou_prediction_head.layers.0.weight'):
            assert not torch.equal(ours[key][:sam[key].shape[0]], sam[key]), (name, key)
    kept = MODELS.build(dict(
        HEAD, reinit_class_tokens=False,
        mask_decoder=dict(HEAD['mask_decoder'], checkpoint=ckpt)))
    kept.init_weights()
    assert torch.equal(kept.mask_decoder.mask_tokens.weight[:4], sam['mask_tokens.weight'])


def test_gradient_reaches_lora_and_both_stages_not_the_frozen_encoder():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SAMSegmentor',
        data_preprocessor=dict(type='SAMDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
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
    """ViT-B/L/H use 16-pixel patches: after SAM's 4x pixel decoder, two more 2x transposed
    convolutions (kernel 2, stride 2), so one 1/4-scale feature pixel (i, j) drives exactly
    the 4 x 4 output block at (4i, 4j) and nothing else."""
    head = MODELS.build(dict(HEAD, prompt_encoder=dict(HEAD['prompt_encoder'], patch_size=16)))
    up = head.full_res_upscaling.eval()
    quarter = torch.randn(1, 4, 16, 16)
    bumped = quarter.clone()
    bumped[0, :, 5, 9] += 1.0
    with torch.no_grad():
        changed = (up(bumped) - up(quarter)).abs().sum(1)[0] > 0  # (64, 64)
    expected = torch.zeros(IMG, IMG, dtype=torch.bool)
    expected[20:24, 36:40] = True
    assert torch.equal(changed, expected)


def test_single_loss_dict_trains_a_step_like_the_list_form():
    """``loss_decode=dict(...)`` (one loss, not a list) gives the list form's loss,
    ``w * CE(stage 1, labels at 1/4) + (1 - w) * CE(stage 2, labels)``, and trains a step."""
    ce = dict(type='CrossEntropyLoss', loss_weight=1.0, loss_name='loss_ce')
    samples, feats = _samples(), _feats()
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    losses = {}
    for form, loss_decode in (('dict', ce), ('list', [ce])):
        head = _head(loss_decode=loss_decode, class_balance=False, embedding_noise=0.0)
        head.stage1_weight = 0.4
        optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
        losses[form] = head.loss(feats, samples, None)
        with torch.no_grad():
            logits1, logits2 = head(feats)
        expected = 0.4 * F.cross_entropy(logits1, labels[:, ::2, ::2]) + \
            0.6 * F.cross_entropy(logits2, labels)
        torch.testing.assert_close(losses[form]['loss_ce'], expected)
        before = head.stage2_decoder.mask_tokens.weight.detach().clone()
        losses[form]['loss_ce'].backward()
        optimizer.step()
        assert not torch.equal(head.stage2_decoder.mask_tokens.weight, before)
    torch.testing.assert_close(losses['dict']['loss_ce'], losses['list']['loss_ce'])

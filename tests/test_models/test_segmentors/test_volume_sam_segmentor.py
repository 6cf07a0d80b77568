"""VolumeSAMSegmentor: (B, C, T, H, W) patches through a 2D SAM head, sliding window at test."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.registry import MODELS

T, IMG, WIDTH = 2, 32, 32


def segmentor_cfg(num_frames=T, stem=dict(type='VolumeStem', channels=(4,)), **test_cfg):
    return dict(
        type='VolumeSAMSegmentor',
        data_preprocessor=dict(type='VolumeDataPreProcessor'),
        stem=stem,
        backbone=dict(type='SAMImageEncoder', img_size=IMG, num_frames=num_frames,
                      frozen=False, checkpoint=None,
                      arch=dict(embed_dim=WIDTH, depth=2, num_heads=2, global_attn_indexes=(1,),
                                patch_size=8, window_size=2, out_chans=WIDTH),
                      adapter=dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter'))),
        decode_head=dict(
            type='SAMedHead', num_classes=3,
            prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=WIDTH, img_size=IMG,
                                patch_size=8),
            mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=WIDTH,
                              transformer_mlp_dim=64, transformer_num_heads=2,
                              iou_head_hidden_dim=32),
            loss_decode=[dict(type='CrossEntropyLoss', loss_weight=0.2),
                         dict(type='MultiClassDiceLoss', loss_weight=0.8)]),
        test_cfg=test_cfg)


def volume_sample(gt, **meta):
    sample = SegDataSample(metainfo=dict(case_id='case0', **meta))
    sample.gt_sem_seg = PixelData(data=gt)
    return sample


def test_trains_on_patches_and_predicts_volumes_at_the_native_grid():
    """Patches train as B * T slices, b-major: ``loss_ce`` is 0.2 x torch's cross-entropy of
    the head's per-slice logits against case 0's slices then case 1's (resized nearest to
    the logits); gradients reach the stem and the depth embedding; a test case comes back on
    its native grid."""
    torch.manual_seed(0)
    model = MODELS.build(segmentor_cfg())
    gts = [torch.randint(0, 3, (T, IMG, IMG)) for _ in range(2)]
    data = dict(inputs=[torch.randn(1, T, IMG, IMG), torch.randn(1, T, IMG, IMG)],
                data_samples=[volume_sample(gt) for gt in gts])
    head, outputs = model.decode_head, []
    forward = head.forward
    head.forward = lambda *args, **kwargs: outputs.append(forward(*args, **kwargs)) or outputs[-1]
    losses = model.loss(**model.data_preprocessor(data, training=True))
    del head.forward
    assert set(losses) >= {'decode.loss_ce', 'decode.loss_dice'}
    logits = outputs[0].detach()  # (B * T, C, h, w)
    labels = F.interpolate(torch.cat(gts)[:, None].float(), size=logits.shape[-2:],
                           mode='nearest')[:, 0].long()
    torch.testing.assert_close(losses['decode.loss_ce'].detach(),
                               0.2 * F.cross_entropy(logits, labels))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.backbone.depth_embed.grad is not None
    assert model.stem.layers[0].weight.grad.abs().sum() > 0

    model.eval()
    native = (7, 40, 41)
    case = dict(inputs=[torch.randn(1, 5, 30, 45)],
                data_samples=[volume_sample(torch.zeros(native, dtype=torch.long),
                                            native_shape=native)])
    with torch.no_grad():
        out = model.test_step(case)[0]
    assert out.pred_sem_seg.data.shape == native
    assert set(out.pred_sem_seg.data.unique().tolist()) <= {0, 1, 2}


def test_window_scores_are_the_logits_of_each_slice():
    # nnU-Net blends logits: window_scores gives the head's logits; test_cfg.blend=
    # 'probabilities' (mmsam's former order) their per-window softmax.
    torch.manual_seed(0)
    model = MODELS.build(segmentor_cfg(stem=None)).eval()
    windows = torch.randn(2, 1, T, IMG, IMG)
    with torch.no_grad():
        scores = model.window_scores(windows)
        # the same slices as a 2D batch through encoder and head, b-major
        flat = windows.transpose(1, 2).flatten(0, 1).expand(-1, 3, -1, -1)
        logits = model.decode_head.forward(model.backbone(flat))
        logits = torch.nn.functional.interpolate(logits, size=(IMG, IMG), mode='bilinear')
        model.test_cfg['blend'] = 'probabilities'
        probs = model.window_scores(windows)
    assert scores.shape == (2, 3, T, IMG, IMG)
    ref = logits.reshape(2, T, 3, IMG, IMG).transpose(1, 2)
    torch.testing.assert_close(scores, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, T, IMG, IMG))
    torch.testing.assert_close(probs, ref.softmax(1), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(scores.sum(1), torch.ones(2, T, IMG, IMG))


def test_patch_depth_must_match_num_frames():
    with pytest.raises(ValueError, match=r'depth T=3 but model.backbone.num_frames=2'):
        MODELS.build(segmentor_cfg(patch_size=(3, IMG, IMG)))
    model = MODELS.build(segmentor_cfg())
    with pytest.raises(ValueError, match=r'depth T=4 but model.backbone.num_frames=2'):
        model.flatten_volume(torch.randn(1, 1, 4, IMG, IMG))
    with pytest.raises(ValueError, match='backbone.img_size=32'):
        model.flatten_volume(torch.randn(1, 1, 2, 16, 16))
    with pytest.raises(ValueError, match='test_cfg.overlap is read by nothing'):
        MODELS.build(segmentor_cfg(overlap=0.5))
    with pytest.raises(ValueError, match=r"test_cfg.blend must be one of \('logits', "):
        MODELS.build(segmentor_cfg(blend='softmax'))
    with pytest.raises(ValueError, match=r"test_cfg.native_resampling must be one of"):
        MODELS.build(segmentor_cfg(native_resampling='cubic'))
    with pytest.raises(ValueError, match="test_cfg.mode='whole' is not supported; it runs "
                       "'slide3d'"):
        MODELS.build(segmentor_cfg(mode='whole'))


def test_preprocessor_checks_batches():
    pre = MODELS.build(dict(type='VolumeDataPreProcessor'))
    with pytest.raises(ValueError, match='batch_size=1'):
        pre(dict(inputs=[torch.zeros(1, 2, 4, 4)] * 2, data_samples=None), training=False)
    with pytest.raises(ValueError, match='RandomPatchCrop3D'):
        pre(dict(inputs=[torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5)], data_samples=None),
            training=True)
    out = pre(dict(inputs=[torch.zeros(1, 2, 4, 4, dtype=torch.float64)] * 2, data_samples=None),
              training=True)
    assert out['inputs'].shape == (2, 1, 2, 4, 4) and out['inputs'].dtype == torch.float32


def test_stem_layout_parameter_count_and_case_independence():
    """channels=(8, 16), upsample=4, counted by hand: conv blocks (3x3x3 conv with bias +
    affine InstanceNorm) 1->8: 8*27+8+16 = 240, 8->16: 16*8*27+16+32 = 3504; two (1, 2, 2)
    transposed convs 16->16 + affine norm: 2 * (16*16*4+16+32) = 2144; last block 16->3:
    3*16*27+3+6 = 1305. In-plane x4, depth kept, and no case reads another."""
    stem = MODELS.build(dict(type='VolumeStem', channels=(8, 16), upsample=4))
    assert sum(p.numel() for p in stem.parameters()) == 240 + 3504 + 2144 + 1305
    x = torch.randn(2, 1, 3, 8, 8)
    moved = x.clone()
    moved[1] += torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out, out_moved = stem(x), stem(moved)
    assert out.shape == (2, 3, 3, 32, 32)
    torch.testing.assert_close(out[0], out_moved[0], rtol=0, atol=0)
    assert (out[1] - out_moved[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match='power of 2'):
        MODELS.build(dict(type='VolumeStem', upsample=3))

"""MedSAMHead and SAMMCLHead against segment-anything's own prompt encoder and mask decoder."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import TINY_ARCH, TINY_IMG
from mmsam.registry import MODELS

WIDTH = TINY_ARCH['out_chans']


def head_cfg(head_type, checkpoint=None, **kwargs):
    losses = dict(MedSAMHead=[dict(type='MaskDiceLoss'), dict(type='MaskBCELoss')],
                  SAMMCLHead=dict(type='MultipleChoiceDiceLoss'))[head_type]
    return dict(type=head_type,
                prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=WIDTH, img_size=TINY_IMG,
                                    patch_size=TINY_ARCH['patch_size'], checkpoint=checkpoint),
                mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=WIDTH,
                                  transformer_mlp_dim=64, transformer_num_heads=2,
                                  iou_head_hidden_dim=32, checkpoint=checkpoint),
                loss_decode=losses, **kwargs)


def build_head(head_type, checkpoint=None, **kwargs):
    head = MODELS.build(head_cfg(head_type, checkpoint, **kwargs))
    head.init_weights()
    return head.eval()


def sample(box, ori=32, annotations=None, gt=None, img_shape=TINY_IMG):
    s = SegDataSample()
    s.set_metainfo(dict(prompt_box=box, ori_shape=(ori, ori), img_shape=(img_shape, img_shape),
                        batch_input_shape=(TINY_IMG, TINY_IMG), img_path=f'img{box[0]}.npz'))
    if annotations is not None:
        s.gt_annotations = PixelData(data=annotations)
    if gt is not None:
        s.gt_sem_seg = PixelData(data=gt[None].long())
    return s


@pytest.mark.parametrize('head_type,multimask', [('MedSAMHead', False), ('SAMMCLHead', True)])
def test_box_heads_equal_segment_anything(tiny_sam, tiny_sam_checkpoint, head_type, multimask):
    head = build_head(head_type, tiny_sam_checkpoint)
    torch.manual_seed(0)
    embedding = torch.randn(2, WIDTH, 8, 8)
    boxes = [[3., 4., 20., 25.], [10., 0., 31., 12.]]  # in the 32-px loaded image
    samples = [sample(b) for b in boxes]
    with torch.no_grad():
        ours = head((embedding,), samples)
        for i, box in enumerate(boxes):
            # segment-anything scales boxes to the input frame: 32 px -> 64 px
            sparse, dense = tiny_sam.prompt_encoder(points=None, masks=None,
                                                    boxes=torch.tensor([box]) * 2)
            ref, _ = tiny_sam.mask_decoder(embedding[i:i + 1],
                                           tiny_sam.prompt_encoder.get_dense_pe(), sparse, dense,
                                           multimask_output=multimask)
            torch.testing.assert_close(ours[i:i + 1], ref, atol=1e-5, rtol=1e-4)
    assert ours.shape[1] == (3 if multimask else 1) == head.num_hypotheses


def test_medsam_loss_is_dice_plus_bce_on_the_prompted_mask():
    head = build_head('MedSAMHead')
    gt = torch.zeros(TINY_IMG, TINY_IMG)
    gt[10:30, 12:40] = 1
    samples = [sample([6., 5., 20., 15.], gt=gt, ori=TINY_IMG)]
    feats = (torch.randn(1, WIDTH, 8, 8),)
    losses = head.loss(feats, samples, None)
    logits = head(feats, samples)[:, 0]
    target = torch.nn.functional.interpolate(gt[None, None], size=logits.shape[-2:])[:, 0]
    probs = logits.sigmoid()
    dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(losses['loss_dice'], dice, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(losses['loss_bce'], bce, atol=1e-5, rtol=1e-4)


def test_mcl_loss_uses_every_annotation_with_padding_for_fewer():
    head = build_head('SAMMCLHead')
    torch.manual_seed(0)
    ann4 = (torch.rand(4, 32, 32) > 0.5).to(torch.uint8)
    ann2 = (torch.rand(2, 32, 32) > 0.5).to(torch.uint8)
    samples = [sample([1., 1., 9., 9.], annotations=ann4), sample([2., 2., 9., 9.],
                                                                  annotations=ann2)]
    targets, valid = head.annotation_targets(samples, (16, 16))
    assert targets.shape == (2, 4, 16, 16)
    assert valid.tolist() == [[True] * 4, [True, True, False, False]]
    torch.testing.assert_close(targets[1, :2], ann2[:, ::2, ::2].float())
    loss = head.loss((torch.randn(2, WIDTH, 8, 8),), samples, None)['loss_mcl_dice']
    assert 0 < loss.item() < 1


def test_missing_box_or_padding_is_a_clear_error():
    head = build_head('MedSAMHead')
    plain = SegDataSample()
    plain.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64), img_path='a.npz'))
    with pytest.raises(KeyError, match='BoxPromptFromAnnotation'):
        head((torch.randn(1, WIDTH, 8, 8),), [plain])
    padded = sample([1., 1., 5., 5.], gt=torch.zeros(48, 48), img_shape=48)
    with pytest.raises(ValueError, match='keep_ratio=False'):
        head.loss((torch.randn(1, WIDTH, 8, 8),), [padded], None)


def test_fixed_number_of_hypotheses_is_enforced():
    with pytest.raises(ValueError, match='num_hypotheses'):
        MODELS.build(head_cfg('MedSAMHead', num_hypotheses=3))
    head = build_head('SAMMCLHead')
    with pytest.raises(ValueError, match='SeqSAMHead'):
        head.predict_hypotheses((torch.randn(1, WIDTH, 8, 8),), [sample([1., 1., 5., 5.])], 10)

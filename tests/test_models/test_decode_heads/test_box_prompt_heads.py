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
    ori = ori if isinstance(ori, tuple) else (ori, ori)
    s.set_metainfo(dict(prompt_box=box, ori_shape=ori, img_shape=(img_shape, img_shape),
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


@pytest.mark.parametrize('head_type,multimask', [('MedSAMHead', False), ('SAMMCLHead', True)])
def test_box_heads_scale_x_and_y_separately_on_a_non_square_image(tiny_sam, tiny_sam_checkpoint,
                                                                  head_type, multimask):
    # A 40 (H) x 16 (W) image resized to the 64 x 64 input: x scales by 4, y by 1.6.
    head = build_head(head_type, tiny_sam_checkpoint)
    torch.manual_seed(0)
    embedding = torch.randn(1, WIDTH, 8, 8)
    box = [2., 5., 12., 30.]
    with torch.no_grad():
        ours = head((embedding,), [sample(box, ori=(40, 16))])
        sparse, dense = tiny_sam.prompt_encoder(
            points=None, masks=None, boxes=torch.tensor([[2. * 4, 5. * 1.6, 12. * 4, 30. * 1.6]]))
        ref, _ = tiny_sam.mask_decoder(embedding, tiny_sam.prompt_encoder.get_dense_pe(), sparse,
                                       dense, multimask_output=multimask)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    swapped = head.prompt_boxes([sample(box, ori=(16, 40))], 'cpu')
    torch.testing.assert_close(swapped, torch.tensor([[2. * 1.6, 5. * 4, 12. * 1.6, 30. * 4]]))


def test_medsam_prompted_loss_is_dice_plus_bce_on_the_prompted_mask():
    head = build_head('MedSAMHead', train_target='prompted')
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


def _readers():
    """Three readers on a 32 x 32 image: the first marked nothing, the other two differ."""
    ann = torch.zeros(3, 32, 32, dtype=torch.uint8)
    ann[1, 4:20, 4:20] = 1
    ann[2, 10:30, 2:12] = 1
    return ann


def _dice_loss(logits, target):
    probs = logits.sigmoid()
    return (1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)).item()


@pytest.mark.parametrize('head_type', ['MedSAMHead', 'SAMMCLHead'])
def test_random_reader_target_is_a_non_empty_reader_drawn_independently_of_the_box(head_type):
    cfg = head_cfg(head_type)
    if head_type == 'MedSAMHead':  # SeqSAM's baseline: Dice only
        cfg['loss_decode'] = dict(type='MaskDiceLoss')
    head = MODELS.build(cfg).eval()
    ann = _readers()
    # the box and gt_sem_seg come from reader 1; the target is drawn again among readers 1, 2
    samples = [sample([4., 4., 19., 19.], annotations=ann, gt=ann[1])]
    feats = (torch.randn(1, WIDTH, 8, 8),)
    with torch.no_grad():
        logits = head(feats, samples)[0]  # (M, 32, 32): the loaded size here
    small = ann.float()
    per_reader = [min(_dice_loss(hyp, small[k]) for hyp in logits) for k in range(3)]
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        with torch.no_grad():
            loss = next(iter(head.loss(feats, samples, None).values())).item()
        match = [k for k in range(3) if abs(loss - per_reader[k]) < 1e-5]
        assert match and 0 not in match, (loss, per_reader)
        seen.update(match)
    assert seen == {1, 2}
    # every reader empty: the empty target
    empty = [sample([0., 0., 31., 31.], annotations=torch.zeros_like(ann), gt=ann[0])]
    with torch.no_grad():
        loss = next(iter(head.loss(feats, empty, None).values())).item()
        assert loss == pytest.approx(min(_dice_loss(h, small[0]) for h in head(feats, empty)[0]),
                                     abs=1e-6)


def test_mcl_loss_uses_every_annotation_with_padding_for_fewer():
    head = build_head('SAMMCLHead', train_target='all_annotations')
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
    padded = sample([1., 1., 5., 5.], gt=torch.zeros(48, 48), img_shape=48,
                    annotations=torch.zeros(2, 48, 48, dtype=torch.uint8))
    with pytest.raises(ValueError, match='keep_ratio=False'):
        head.loss((torch.randn(1, WIDTH, 8, 8),), [padded], None)
    with pytest.raises(KeyError, match='gt_annotations'):
        head.loss((torch.randn(1, WIDTH, 8, 8),), [sample([1., 1., 5., 5.])], None)


def test_train_target_is_checked():
    for head_type in ('MedSAMHead', 'SAMMCLHead'):
        with pytest.raises(ValueError, match='train_target'):
            MODELS.build(head_cfg(head_type, train_target='first_reader'))


def test_fixed_number_of_hypotheses_is_enforced():
    with pytest.raises(ValueError, match='num_hypotheses'):
        MODELS.build(head_cfg('MedSAMHead', num_hypotheses=3))
    head = build_head('SAMMCLHead')
    with pytest.raises(ValueError, match='SeqSAMHead'):
        head.predict_hypotheses((torch.randn(1, WIDTH, 8, 8),), [sample([1., 1., 5., 5.])], 10)

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

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


def test_samed_head_is_segment_anythings_decoder_with_one_mask_per_class():
    """SAMed's prompt-free decoder: segment-anything's MaskDecoder with num_classes - 1
    multimask outputs, no sparse prompt, the no-mask dense embedding, and all num_classes
    masks kept (1/4 of the input), run here image by image with the head's weights."""
    head = MODELS.build(HEAD).eval()
    decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=32, iou_head_hidden_dim=32,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64,
                                                        num_heads=2))
    decoder.load_state_dict(head.mask_decoder.state_dict())
    prompts = PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(64, 64),
                            mask_in_chans=16)
    prompts.load_state_dict(head.prompt_encoder.state_dict())
    torch.manual_seed(0)
    embedding = torch.randn(3, 32, 8, 8)
    with torch.no_grad():
        logits = head((embedding,))
        sparse, dense = prompts(points=None, boxes=None, masks=None)
        assert sparse.shape[1] == 0
        for i in range(3):
            ref, _ = decoder.predict_masks(embedding[i:i + 1], prompts.get_dense_pe(), sparse,
                                           dense)
            torch.testing.assert_close(logits[i:i + 1], ref, atol=1e-5, rtol=1e-4)
    assert logits.shape == (3, 4, 32, 32)


def _head_losses_logits_and_labels(num):
    """A SAMed head, its losses on ``num`` random samples, its (num, 4, 32, 32) logits and
    the labels resized (nearest) to the logits' resolution."""
    head = MODELS.build(HEAD)
    samples = _samples(num)
    feats = (torch.randn(num, 32, 8, 8),)
    losses = head.loss(feats, samples, None)
    label = torch.nn.functional.interpolate(
        torch.stack([s.gt_sem_seg.data for s in samples]).float(), size=(32, 32),
        mode='nearest').squeeze(1).long()
    return head, losses, head(feats), label


def test_samed_loss_is_weighted_ce_plus_dice_at_logit_resolution():
    head, losses, logits, label = _head_losses_logits_and_labels(2)
    ce = torch.nn.functional.cross_entropy(logits, label)
    torch.testing.assert_close(losses['loss_ce'], 0.2 * ce, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(losses['loss_dice'], 0.8 * _official_dice_loss(logits, label, 4),
                               atol=1e-5, rtol=1e-4)
    (losses['loss_ce'] + losses['loss_dice']).backward()
    assert head.mask_decoder.mask_tokens.weight.grad.abs().sum() > 0


def test_num_multimask_outputs_is_derived_not_configured():
    cfg = dict(HEAD, mask_decoder=dict(HEAD['mask_decoder'], num_multimask_outputs=3))
    with pytest.raises(ValueError, match='num_multimask_outputs'):
        MODELS.build(cfg)


def _official_dice_loss(logits, label, n_classes, smooth=1e-5):
    """SAMed's utils.DiceLoss(softmax=True), written out loop by loop as the official code."""
    score = torch.softmax(logits, dim=1)
    loss = 0.0
    for i in range(n_classes):
        target = (label == i).float()
        intersect = torch.sum(score[:, i] * target)
        y_sum, z_sum = torch.sum(target * target), torch.sum(score[:, i] * score[:, i])
        loss += 1 - (2 * intersect + smooth) / (z_sum + y_sum + smooth)
    return loss / n_classes


def test_samed_dice_term_hand_worked():
    """Two pixels, two classes, softmax (0.8, 0.2) on a class-0 pixel and (0.3, 0.7) on a
    class-1 pixel: Dice_0 = 2 * 0.8 / (0.8^2 + 0.3^2 + 1), Dice_1 = 2 * 0.7 / (0.2^2 + 0.7^2 + 1),
    loss = 1 - (Dice_0 + Dice_1) / 2 (squared denominators, over the batch, background in)."""
    loss = MODELS.build(dict(type='MultiClassDiceLoss', loss_weight=1.0))
    probs = torch.tensor([[0.8, 0.3], [0.2, 0.7]]).reshape(1, 2, 1, 2)
    label = torch.tensor([[[0, 1]]])
    expected = 1 - (1.6 / 1.73 + 1.4 / 1.53) / 2  # = 0.080056
    assert loss(probs.log(), label).item() == pytest.approx(expected, abs=1e-5)


def test_samed_loss_dice_term_equals_the_official_dice_loss():
    _, losses, logits, label = _head_losses_logits_and_labels(3)
    torch.testing.assert_close(losses['loss_dice'], 0.8 * _official_dice_loss(logits, label, 4))


def test_class_token_parts_start_fresh_after_loading_sam(tiny_sam, tiny_sam_checkpoint):
    """SAMed's loader skips mask_tokens, output_hypernetworks_mlps and iou_prediction_head."""
    cfg = dict(HEAD, prompt_encoder=dict(HEAD['prompt_encoder'], checkpoint=tiny_sam_checkpoint),
               mask_decoder=dict(HEAD['mask_decoder'], checkpoint=tiny_sam_checkpoint))
    head = MODELS.build(cfg)
    head.init_weights()
    sam, ours = tiny_sam.mask_decoder.state_dict(), head.mask_decoder.state_dict()
    assert torch.equal(ours['transformer.final_attn_token_to_image.v_proj.weight'],
                       sam['transformer.final_attn_token_to_image.v_proj.weight'])
    assert not torch.equal(ours['mask_tokens.weight'], sam['mask_tokens.weight'])
    assert not torch.equal(ours['output_hypernetworks_mlps.1.layers.2.weight'],
                           sam['output_hypernetworks_mlps.1.layers.2.weight'])
    kept = MODELS.build(dict(cfg, reinit_class_tokens=False))
    kept.init_weights()
    assert torch.equal(kept.mask_decoder.mask_tokens.weight, sam['mask_tokens.weight'])


def test_loss_label_resize_zoom_gives_scipy_zoom_order_0_labels():
    """'zoom': the official dataset's low_res_label = scipy zoom(label, order=0)."""
    import numpy as np
    from scipy.ndimage import zoom
    samples, gen = _samples(2, size=64), torch.Generator().manual_seed(0)
    for sample in samples:  # label maps with borders everywhere
        sample.gt_sem_seg.data = torch.randint(0, 4, (1, 64, 64), generator=gen)
    official = np.stack([zoom(s.gt_sem_seg.data[0].numpy(), 16 / 64, order=0) for s in samples])
    zoomed = MODELS.build(dict(HEAD, loss_label_resize='zoom')).resize_labels(samples, (16, 16))
    assert np.array_equal(zoomed.numpy(), official)
    default = MODELS.build(HEAD).resize_labels(samples, (16, 16))  # F.interpolate nearest
    assert not np.array_equal(default.numpy(), official)
    with pytest.raises(ValueError, match="loss_label_resize='scipy'"):
        MODELS.build(dict(HEAD, loss_label_resize='scipy'))

"""MaskSAMHead against segment-anything's prompt encoder and mask decoder, and MaskSAM's
gradient paths through a whole VolumeSAMSegmentor."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import TINY_ARCH, TINY_IMG
from mmsam.models.decode_heads.masksam_head import semantic_scores, slice_targets
from mmsam.models.utils.box_ops import masks_to_boxes_normalized
from mmsam.registry import MODELS

WIDTH, GRID, T, Q, C = TINY_ARCH['out_chans'], TINY_IMG // TINY_ARCH['patch_size'], 2, 4, 3


def head_cfg(checkpoint=None, width=WIDTH, img=TINY_IMG, zero_adapters=True, **kwargs):
    adapter = dict(type='MaskSAMDecoderAdapter',
                   token_adapter=dict(type='DMLPAdapter', zero_init=zero_adapters),
                   image_adapter=dict(type='DConvAdapter', zero_init=zero_adapters))
    cfg = dict(type='MaskSAMHead', num_classes=C, num_frames=T, num_queries=Q,
               prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=width, img_size=img,
                                   patch_size=TINY_ARCH['patch_size'], checkpoint=checkpoint,
                                   frozen=True),
               mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=width,
                                 transformer_mlp_dim=64, transformer_num_heads=2,
                                 iou_head_hidden_dim=32, checkpoint=checkpoint, frozen=True),
               decoder_adapter=adapter, refine=None,
               loss_decode=dict(type='MaskClassificationCriterion', num_points=None))
    cfg.update(kwargs)
    return cfg


def generator_output(n_slices=T, size=4 * GRID, seed=0):
    g = torch.Generator().manual_seed(seed)
    x1y1 = torch.rand(n_slices, Q, 2, generator=g) * 0.5
    return dict(image_embedding=torch.randn(n_slices, WIDTH, GRID, GRID, generator=g),
                aux_mask_logits=torch.randn(n_slices, Q, size, size, generator=g) * 3,
                aux_boxes=torch.cat([x1y1, x1y1 + 0.3], dim=-1),
                aux_cls_tokens=torch.randn(n_slices, Q, WIDTH, generator=g))


@pytest.mark.parametrize('grid', ['encoder_input', 'patch'])
@pytest.mark.parametrize('mode', ['mask_avg_box', 'mask', 'box', 'mask_box'])
def test_zeroed_adapters_give_segment_anything_masks(tiny_sam, tiny_sam_checkpoint, mode, grid):
    """The aux masks are at 4g, smaller than the encoder input (as ACDC's 256 patch for a 1024
    input): boxes are floored on the input's pixels (mmsam's reading) or on the patch's and
    scaled to the input (the official code's ``apply_boxes``)."""
    head = MODELS.build(head_cfg(tiny_sam_checkpoint, prompt_mode=mode, box_pixel_grid=grid))
    head.init_weights()
    head.eval()
    inputs = generator_output()
    with torch.no_grad():
        ours = head(inputs)['mask_logits']
        pe = tiny_sam.prompt_encoder
        for s in range(T):
            binary = inputs['aux_mask_logits'][s] > 0
            mask_box = masks_to_boxes_normalized(binary)
            learned = inputs['aux_boxes'][s]
            box = dict(mask=mask_box, box=learned, mask_box=learned,
                       mask_avg_box=(learned + mask_box) / 2)[mode]
            if grid == 'encoder_input':
                pixel_box = torch.floor(box * TINY_IMG)
            else:
                pixel_box = torch.floor(box * 4 * GRID) * (TINY_IMG / (4 * GRID))
            masks = None if mode == 'box' else binary[:, None].float()  # already 4g x 4g
            sparse, dense = pe(points=None, boxes=pixel_box, masks=masks)
            cls = inputs['aux_cls_tokens'][s] + head.cls_token.weight
            sparse = torch.cat([sparse, cls[:, None]], dim=1)
            ref, _ = tiny_sam.mask_decoder(inputs['image_embedding'][s:s + 1], pe.get_dense_pe(),
                                           sparse, dense, multimask_output=False)
            torch.testing.assert_close(ours[s], ref[:, 0], atol=1e-5, rtol=1e-4)


def test_semantic_scores_equal_an_explicit_loop():
    torch.manual_seed(0)
    cls, masks = torch.randn(2, Q, C + 1), torch.randn(2, Q, 5, 6)
    ref = torch.zeros(2, C, 5, 6)
    for n in range(2):
        for q in range(Q):
            probs = cls[n, q].softmax(-1)
            for c in range(C):
                ref[n, c] += probs[c] * masks[n, q].sigmoid()
    torch.testing.assert_close(semantic_scores(cls, masks), ref)
    # One confident query per class reproduces the label map (no-object queries add nothing).
    label = torch.randint(0, C, (1, 5, 6))
    onehot = torch.full((1, Q, C + 1), -20.)
    onehot[0, torch.arange(C), torch.arange(C)] = 20.
    onehot[0, C:, C] = 20.
    mask = torch.full((1, Q, 5, 6), -20.)
    for c in range(C):
        mask[0, c][label[0] == c] = 20.
    assert torch.equal(semantic_scores(onehot, mask).argmax(1), label)


def test_targets_are_every_class_present_background_included():
    label = torch.zeros(2, 4, 4, dtype=torch.long)
    label[0, 1:3, 2:4] = 2
    label[1] = 1
    first, second = slice_targets(label, C)
    assert first['labels'].tolist() == [0, 2] and second['labels'].tolist() == [1]
    assert torch.equal(first['masks'][1], label[0] == 2)
    torch.testing.assert_close(first['boxes'][1], torch.tensor([2 / 4, 1 / 4, 3 / 4, 2 / 4]))


def test_too_few_queries_warns():
    """The official code builds Q < C networks (its fixture has Q 2, C 3): a warning, not an
    error, since such a head cannot match every class of a crowded slice in training."""
    with pytest.warns(UserWarning, match='num_queries=2 < num_classes=3'):
        MODELS.build(head_cfg(num_queries=2))


def tiny_masksam(width=16):
    arch = dict(embed_dim=16, depth=3, num_heads=2, global_attn_indexes=(2,), patch_size=8,
                window_size=4, out_chans=width)
    return dict(
        type='VolumeSAMSegmentor', data_preprocessor=dict(type='VolumeDataPreProcessor'),
        stem=dict(type='VolumeStem'),
        backbone=dict(type='SAMImageEncoder', arch=arch, img_size=TINY_IMG, num_frames=T,
                      out_indices=(0, 1, 2), with_neck_output=True, frozen=True,
                      adapter=dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter'))),
        neck=dict(type='MaskSAMPromptGenerator', embed_dim=16, num_frames=T, num_queries=Q,
                  token_dim=width, neck_dim=width, channels=(16, 8, 8, 8), scales=(1, 2, 4, 8),
                  kernel_sizes=((3, 3, 3),) * 3 + ((1, 3, 3),), num_convs=(1, 1, 1, 1),
                  cls_pool=4),
        decode_head=dict(head_cfg(width=width, zero_adapters=False),
                         refine=dict(type='MaskRefine3D', hidden=8, upsample=2)))


def test_gradients_reach_trainable_parts_only():
    torch.manual_seed(0)
    model = MODELS.build(tiny_masksam())
    gt = torch.zeros(T, TINY_IMG, TINY_IMG, dtype=torch.long)
    gt[:, 10:30, 20:40] = 1
    gt[1, 40:60, 5:25] = 2
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(case_id='c'))
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s)
    data = model.data_preprocessor(
        dict(inputs=[torch.randn(1, T, TINY_IMG, TINY_IMG)] * 2, data_samples=samples), True)
    losses = model.loss(**data)
    assert {'decode.loss_cls', 'decode.loss_mask', 'decode.loss_aux_bbox'} <= set(losses)
    sum(losses.values()).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    for prefix in ('stem.', 'backbone.depth_embed', 'backbone.blocks.0.space_adapter',
                   'backbone.blocks.1.mlp_adapter', 'neck.', 'decode_head.decoder_adapter.',
                   'decode_head.depth_pe', 'decode_head.cls_embed', 'decode_head.cls_token',
                   'decode_head.refine.'):
        names = [n for n in trainable if n.startswith(prefix)]
        assert names, prefix
        assert any(grads[n] is not None and grads[n].abs().sum() > 0 for n in names), prefix
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any(n.startswith('backbone.blocks.0.attn') for n in frozen)
    assert any(n.startswith('decode_head.mask_decoder.') for n in frozen)
    assert any(n.startswith('decode_head.prompt_encoder.') for n in frozen)
    assert all(grads[n] is None for n in frozen)
    # the generator's mask and box heads learn from the auxiliary losses
    assert model.neck.mask_head.weight.grad.abs().sum() > 0


def test_window_scores_are_the_query_mixture_of_the_head_outputs():
    """A whole window's class scores: per slice (b-major), class c's score is
    ``sum_q softmax(cls_q)[c] * sigmoid(mask_q)``, worked here by an explicit loop over the
    head's own outputs and resized bilinearly to the input."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_masksam()).eval()
    head, outputs = model.decode_head, []
    forward = head.forward
    head.forward = lambda *args, **kwargs: outputs.append(forward(*args, **kwargs)) or outputs[-1]
    windows = torch.randn(1, 1, T, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        scores = model.window_scores(windows)
    cls, masks = outputs[0]['cls_logits'], outputs[0]['mask_logits']
    expected = torch.zeros(T, C, *masks.shape[-2:])
    for t in range(T):
        for q in range(Q):
            probs = cls[t, q].softmax(-1)
            for c in range(C):
                expected[t, c] += probs[c] * masks[t, q].sigmoid()
    if expected.shape[-2:] != (TINY_IMG, TINY_IMG):
        expected = torch.nn.functional.interpolate(expected, size=(TINY_IMG, TINY_IMG),
                                                   mode='bilinear', align_corners=False)
    assert scores.shape == (1, C, T, TINY_IMG, TINY_IMG)
    torch.testing.assert_close(scores[0].transpose(0, 1), expected)

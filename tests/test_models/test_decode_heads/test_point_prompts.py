"""Clicks and previous-mask prompts on the box-prompted heads, against segment-anything's own
PromptEncoder and MaskDecoder with the same weights."""
import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample

from conftest import TINY_ARCH, TINY_IMG
from mmsam.models.decode_heads.box_prompt_head import PROMPT_MASK_KEY
from mmsam.registry import MODELS

WIDTH = TINY_ARCH['out_chans']
HEADS = [('MedSAMHead', False), ('SAMMCLHead', True)]


def build_head(head_type, checkpoint):
    loss = dict(type='MaskDiceLoss') if head_type == 'MedSAMHead' else dict(
        type='MultipleChoiceDiceLoss')
    head = MODELS.build(dict(
        type=head_type,
        prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=WIDTH, img_size=TINY_IMG,
                            patch_size=TINY_ARCH['patch_size'], checkpoint=checkpoint),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=WIDTH, transformer_mlp_dim=64,
                          transformer_num_heads=2, iou_head_hidden_dim=32,
                          checkpoint=checkpoint),
        loss_decode=loss))
    head.init_weights()
    return head.eval()


def sample(box=None, points=None, labels=None, mask=None, ori=(32, 32)):
    """A sample of a 32 x 32 loaded image (by default) resized to the 64 x 64 input."""
    meta = dict(ori_shape=ori, img_shape=(TINY_IMG, TINY_IMG), img_path='img.npz',
                batch_input_shape=(TINY_IMG, TINY_IMG))
    if box is not None:
        meta['prompt_box'] = np.asarray(box, np.float32)
    if points is not None:
        meta['prompt_points'] = np.asarray(points, np.float32).reshape(-1, 2)
        meta['prompt_point_labels'] = np.asarray(labels, np.int64)
    if mask is not None:
        meta[PROMPT_MASK_KEY] = mask
    s = SegDataSample()
    s.set_metainfo(meta)
    return s


def reference(sam, embedding, multimask, box=None, points=None, labels=None, mask=None,
              scale=(2., 2.)):
    """segment-anything's low-res logits, prompts scaled to the input frame by hand."""
    kwargs = dict(boxes=None, points=None, masks=mask)
    if box is not None:
        kwargs['boxes'] = torch.tensor([box]) * torch.tensor(scale * 2)
    if points is not None:
        kwargs['points'] = (torch.tensor([points]) * torch.tensor(scale),
                            torch.tensor([labels]))
    sparse, dense = sam.prompt_encoder(**kwargs)
    masks, _ = sam.mask_decoder(embedding, sam.prompt_encoder.get_dense_pe(), sparse, dense,
                                multimask_output=multimask)
    return masks


PROMPTS = {
    'box+points': dict(box=[3., 4., 20., 25.], points=[[10., 12.], [18., 5.]], labels=[1, 0]),
    'points only': dict(points=[[10., 12.], [25., 28.], [2., 30.]], labels=[1, 1, 0]),
    'one point': dict(points=[[16., 16.]], labels=[1]),
}


@pytest.mark.parametrize('head_type,multimask', HEADS)
@pytest.mark.parametrize('name', list(PROMPTS))
def test_clicks_equal_segment_anything(tiny_sam, tiny_sam_checkpoint, head_type, multimask,
                                       name):
    head = build_head(head_type, tiny_sam_checkpoint)
    torch.manual_seed(0)
    embedding = torch.randn(1, WIDTH, 8, 8)
    prompts = PROMPTS[name]
    with torch.no_grad():
        ours = head((embedding, ), [sample(**prompts)])
        ref = reference(tiny_sam, embedding, multimask, **prompts)
        box_only = head((embedding, ), [sample(box=[3., 4., 20., 25.])])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    if 'box' in prompts:  # the clicks reach the decoder
        assert (ours - box_only).abs().max() > 1e-3


@pytest.mark.parametrize('head_type,multimask', HEADS)
def test_previous_mask_prompt_equals_segment_anything(tiny_sam, tiny_sam_checkpoint, head_type,
                                                      multimask):
    head = build_head(head_type, tiny_sam_checkpoint)
    torch.manual_seed(1)
    embedding = torch.randn(1, WIDTH, 8, 8)
    previous = torch.randn(32, 32) * 3  # 4 x the 8 x 8 embedding grid
    box, points, labels = [3., 4., 20., 25.], [[10., 12.]], [0]
    with torch.no_grad():
        for kwargs in (dict(box=box), dict(box=box, points=points, labels=labels),
                       dict(points=points, labels=[1])):
            ours = head((embedding, ), [sample(mask=previous.numpy(), **kwargs)])
            ref = reference(tiny_sam, embedding, multimask, mask=previous[None, None], **kwargs)
            torch.testing.assert_close(ours, ref, atol=1e-5,
                                       rtol=0)
        without = head((embedding, ), [sample(box=box)])
        assert (head((embedding, ), [sample(box=box, mask=previous[None])]) -
                without).abs().max() > 1e-3


def test_points_scale_like_the_box_on_a_non_square_image(tiny_sam, tiny_sam_checkpoint):
    # A 40 (H) x 16 (W) image resized to 64 x 64: x scales by 4, y by 1.6.
    head = build_head('MedSAMHead', tiny_sam_checkpoint)
    embedding = torch.randn(1, WIDTH, 8, 8)
    prompts = dict(box=[2., 5., 12., 30.], points=[[7., 20.]], labels=[1])
    with torch.no_grad():
        ours = head((embedding, ), [sample(ori=(40, 16), **prompts)])
        ref = reference(tiny_sam, embedding, False, scale=(4., 1.6), **prompts)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize('head_type,multimask', HEADS)
def test_batch_with_different_click_counts_pads_with_label_minus_one(
        tiny_sam, tiny_sam_checkpoint, head_type, multimask):
    head = build_head(head_type, tiny_sam_checkpoint)
    torch.manual_seed(2)
    embedding = torch.randn(3, WIDTH, 8, 8)
    box = [3., 4., 20., 25.]
    prompts = [dict(box=box, points=[[10., 12.]], labels=[1]),
               dict(box=box, points=[[10., 12.], [18., 5.], [6., 20.]], labels=[1, 0, 1]),
               dict(box=box)]
    with torch.no_grad():
        batched = head((embedding, ), [sample(**p) for p in prompts])
        # the longest prompt list is not padded: batch mates change nothing
        alone = head((embedding[1:2], ), [sample(**prompts[1])])
        torch.testing.assert_close(batched[1:2], alone, atol=1e-6, rtol=0)
        # shorter ones get SAM's padding: segment-anything with points labelled -1
        for i, count in ((0, 1), (2, 0)):
            points = prompts[i].get('points', []) + [[0., 0.]] * (3 - count)
            labels = prompts[i].get('labels', []) + [-1] * (3 - count)
            ref = reference(tiny_sam, embedding[i:i + 1], multimask, box=box, points=points,
                            labels=labels)
            torch.testing.assert_close(batched[i:i + 1], ref,
                                       atol=1e-5, rtol=0)


def test_box_only_batches_keep_the_one_shot_path(tiny_sam_checkpoint):
    head = build_head('SAMMCLHead', tiny_sam_checkpoint)
    embedding = torch.randn(2, WIDTH, 8, 8)
    boxes = [[3., 4., 20., 25.], [10., 0., 31., 12.]]
    with torch.no_grad():
        plain = head((embedding, ), [sample(box=b) for b in boxes])
        empty_clicks = head((embedding, ), [sample(box=b, points=np.zeros((0, 2)), labels=[])
                                            for b in boxes])
    assert torch.equal(plain, empty_clicks)


def test_seqsam_first_step_reads_the_clicks(tiny_sam_checkpoint):
    cfg = dict(type='SeqSAMHead',
               prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=WIDTH, img_size=TINY_IMG,
                                   patch_size=TINY_ARCH['patch_size']),
               mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=WIDTH,
                                 transformer_mlp_dim=64, transformer_num_heads=2,
                                 iou_head_hidden_dim=32),
               loss_decode=dict(type='HungarianDiceLoss'), num_hypotheses=2)
    head = MODELS.build(cfg).eval()
    embedding = torch.randn(1, WIDTH, 8, 8)
    box = [3., 4., 20., 25.]
    with torch.no_grad():
        plain = head((embedding, ), [sample(box=box)])
        clicked = head((embedding, ), [sample(box=box, points=[[10., 12.]], labels=[0])])
    assert (plain[:, 0] - clicked[:, 0]).abs().max() > 1e-4


@pytest.mark.parametrize('kwargs,match', [
    (dict(), 'no prompt'),
    (dict(points=[[1., 2.]], labels=[2]), 'prompt_point_labels must be'),
    (dict(points=[[1., 2.], [3., 4.]], labels=[1]), r'must be \(N, 2\)'),
    (dict(box=[1., 2., 9., 9.], mask=np.zeros((16, 16))), 'prompt_mask_logits must be'),
])
def test_bad_prompts_name_the_key(tiny_sam_checkpoint, kwargs, match):
    head = build_head('MedSAMHead', tiny_sam_checkpoint)
    if not kwargs:
        s = sample(box=None, mask=np.zeros((32, 32)))
    else:
        s = sample(**kwargs)
    with pytest.raises((KeyError, ValueError), match=match):
        head((torch.randn(1, WIDTH, 8, 8), ), [s])


def test_psam_decodes_segment_anythings_click_tokens(tiny_sam, tiny_sam_checkpoint):
    from test_psam_head import psam
    head = psam(tiny_sam_checkpoint).eval()
    captured = []
    original = head.decode
    head.decode = lambda emb, sparse, dense, z=None: captured.append((sparse, dense)) or original(
        emb, sparse, dense, z)
    prompts = dict(box=[3., 4., 20., 25.], points=[[10., 12.]], labels=[0])
    previous = torch.randn(32, 32)
    with torch.no_grad():
        head((torch.randn(1, WIDTH, 8, 8), ), [sample(mask=previous.numpy(), **prompts)],
             num_hypotheses=2)
        sparse, dense = tiny_sam.prompt_encoder(
            points=(torch.tensor([prompts['points']]) * 2, torch.tensor([prompts['labels']])),
            boxes=torch.tensor([prompts['box']]) * 2, masks=previous[None, None])
    torch.testing.assert_close(captured[0][0], sparse.repeat(2, 1, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(captured[0][1], dense.repeat(2, 1, 1, 1), atol=1e-6, rtol=0)

"""SAMedHead's ``click_refinement``: clicks (and a previous mask) for one class, decoded on the
same image embedding through SAM's prompt encoder, against segment-anything's own
PromptEncoder + MaskDecoder with the head's weights."""
import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

from conftest import TINY_ARCH
from mmsam.registry import MODELS

NUM_CLASSES = 4
HEAD = dict(
    type='SAMedHead', num_classes=NUM_CLASSES,
    prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=32, img_size=64, patch_size=8),
    mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=32, transformer_mlp_dim=64,
                      transformer_num_heads=2, iou_head_hidden_dim=32),
    loss_decode=dict(type='CrossEntropyLoss'))
# clicks in pixels of a 32 x 32 loaded image, resized to the 64 x 64 network input (x2)
POINTS = [[10., 12.], [25., 28.]]
LABELS = [1, 0]


def build_head(click_refinement):
    torch.manual_seed(0)
    head = MODELS.build(dict(HEAD, click_refinement=click_refinement)).eval()
    with torch.no_grad():  # a non-zero not-a-point / mask path, so the prompts matter
        for p in head.prompt_encoder.parameters():
            p.normal_(0, 0.5)
    return head


def sample(points=None, labels=None, prompt_class=None, mask=None):
    meta = dict(ori_shape=(32, 32), img_shape=(64, 64), img_path='img.npz',
                batch_input_shape=(64, 64))
    if points is not None:
        meta.update(prompt_points=np.asarray(points, np.float32),
                    prompt_point_labels=np.asarray(labels, np.int64))
    if prompt_class is not None:
        meta['prompt_class'] = prompt_class
    if mask is not None:
        meta['prompt_mask_logits'] = mask
    s = SegDataSample()
    s.set_metainfo(meta)
    return s


def reference(head, embedding, points, labels, mask=None):
    """Every mask token's logits from segment-anything's modules loaded with the head's
    weights, points scaled to the input frame by hand: (1, NUM_CLASSES, 32, 32)."""
    prompts = PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(64, 64),
                            mask_in_chans=16)
    prompts.load_state_dict(head.prompt_encoder.state_dict())
    decoder = MaskDecoder(num_multimask_outputs=NUM_CLASSES - 1, transformer_dim=32,
                          iou_head_hidden_dim=32,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64,
                                                        num_heads=2))
    decoder.load_state_dict(head.mask_decoder.state_dict())
    sparse, dense = prompts(points=(torch.tensor([points]) * 2., torch.tensor([labels])),
                            boxes=None, masks=None if mask is None else mask.reshape(1, 1, 32, 32))
    masks, _ = decoder.predict_masks(embedding, prompts.get_dense_pe(), sparse, dense)
    return masks


@pytest.fixture(scope='module')
def embedding():
    torch.manual_seed(1)
    return torch.randn(3, 32, 8, 8)


def test_off_and_without_clicks_identical(embedding):
    off, on = build_head(False), build_head(True)
    clicked = [sample(POINTS, LABELS, 2) for _ in range(3)]
    with torch.no_grad():
        before = off((embedding,))
        assert torch.equal(off((embedding,), clicked), before)  # option off: clicks ignored
        assert torch.equal(on((embedding,), [sample() for _ in range(3)]), before)
        assert torch.equal(on((embedding,)), before)


@pytest.mark.parametrize('with_mask', [False, True])
def test_clicked_class_equals_segment_anything(embedding, with_mask):
    head = build_head(True)
    torch.manual_seed(2)
    mask = torch.randn(32, 32) * 3 if with_mask else None
    samples = [sample(), sample(POINTS, LABELS, 2, mask), sample()]
    with torch.no_grad():
        free = head((embedding,))
        ours = head((embedding,), samples)
        ref = reference(head, embedding[1:2], POINTS, LABELS, mask)
    torch.testing.assert_close(ours[1, 2], ref[0, 2], atol=1e-5, rtol=1e-4)
    assert (ours[1, 2] - free[1, 2]).abs().max() > 1e-2  # the clicks changed the class
    keep = torch.ones(3, NUM_CLASSES, dtype=torch.bool)
    keep[1, 2] = False
    assert torch.equal(ours[keep], free[keep])  # every other sample and class unchanged
    if with_mask:  # the mask prompt is used: without it the answer differs
        no_mask = reference(head, embedding[1:2], POINTS, LABELS)
        assert (no_mask[0, 2] - ours[1, 2]).abs().max() > 1e-3


def test_missing_or_bad_prompt_class_is_named(embedding):
    head = build_head(True)
    with pytest.raises(KeyError, match='prompt_class'):
        head((embedding[:1],), [sample(POINTS, LABELS)])
    with pytest.raises(ValueError, match='prompt_class=4'):
        head((embedding[:1],), [sample(POINTS, LABELS, 4)])


def test_segmentor_runs_the_backbone_once():
    """Through SAMSegmentor.predict: the image encoder runs once for the prompt-free and the
    clicked decode together, and the clicks change the prediction."""
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SAMSegmentor',
        data_preprocessor=dict(type='SAMDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
                               size=(64, 64)),
        backbone=dict(type='SAMImageEncoder', arch=TINY_ARCH, img_size=64),
        decode_head=dict(HEAD, click_refinement=True))).eval()
    calls = []
    model.backbone.register_forward_hook(lambda *_: calls.append(1))
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        clicked = model.predict(inputs, [sample(POINTS, LABELS, 1)])[0].seg_logits.data
        assert len(calls) == 1
        free = model.predict(inputs, [sample()])[0].seg_logits.data
    assert clicked.shape == free.shape == (NUM_CLASSES, 32, 32)
    assert torch.equal(clicked[[0, 2, 3]], free[[0, 2, 3]])
    assert not torch.equal(clicked[1], free[1])


def test_sam2_decoder_path_clicked_class_equals_sam2s_decoder(tmp_path):
    """On SAM2PromptEncoder + SAM2MaskDecoder (SAM 2.1-tiny's architecture at 128 px, seeded
    random weights): the clicked class equals sam2's own prompt encoder + predict_masks on the
    same features, every other class the prompt-free output."""
    from sam2.build_sam import build_sam2
    img = 128
    torch.manual_seed(0)
    sam2 = build_sam2('configs/sam2.1/sam2.1_hiera_t.yaml', ckpt_path=None, device='cpu',
                      hydra_overrides_extra=[f'++model.image_size={img}']).eval()
    with torch.no_grad():
        for param in sam2.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    path = str(tmp_path / 'sam2.pt')
    torch.save({'model': sam2.state_dict()}, path)
    head = MODELS.build(dict(
        type='SAMedHead', num_classes=4, reinit_class_tokens=False, click_refinement=True,
        prompt_encoder=dict(type='SAM2PromptEncoder', embed_dim=256, img_size=img,
                            checkpoint=path),
        mask_decoder=dict(type='SAM2MaskDecoder', transformer_dim=256, checkpoint=path),
        loss_decode=dict(type='CrossEntropyLoss')))
    head.init_weights()
    head.eval()
    points, labels = [[50., 60.], [30., 40.]], [1, 0]
    clicked = SegDataSample()
    clicked.set_metainfo(dict(img_shape=(img, img), ori_shape=(img, img), img_path='img.png',
                              prompt_points=np.asarray(points), prompt_point_labels=np.asarray(
                                  labels), prompt_class=3))
    with torch.no_grad():
        features = tuple(sam2.image_encoder(torch.randn(1, 3, img, img))['backbone_fpn'])
        free = head(features)
        ours = head(features, [clicked])
        embedding, high_res = head.image_features(features)
        pe = sam2.sam_prompt_encoder
        sparse, dense = pe(points=(torch.tensor([points]), torch.tensor([labels])), boxes=None,
                           masks=None)
        ref, _, _, _ = sam2.sam_mask_decoder.predict_masks(
            image_embeddings=embedding, image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, repeat_image=False,
            high_res_features=[sam2.sam_mask_decoder.conv_s0(features[0]),
                               sam2.sam_mask_decoder.conv_s1(features[1])])
    torch.testing.assert_close(ours[0, 3], ref[0, 3], atol=1e-5, rtol=0)
    assert (ours[0, 3] - free[0, 3]).abs().max() > 1e-2
    assert torch.equal(ours[0, :3], free[0, :3])

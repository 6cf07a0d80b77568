"""SAM 2's decoder path in mmsam (SAM2PromptEncoder + SAM2MaskDecoder, and the box-prompted heads
on them) against ``sam2``'s own SAM2ImagePredictor, with SAM 2.1-tiny's architecture and seeded
random weights saved in the official ``{'model': state_dict}`` layout."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.registry import MODELS

IMG = 128  # SAM 2.1-tiny at 128 px: embedding grid 8, low-res masks 32


@pytest.fixture(scope='module')
def sam21_tiny():
    from sam2.build_sam import build_sam2
    torch.manual_seed(0)
    model = build_sam2('configs/sam2.1/sam2.1_hiera_t.yaml', ckpt_path=None, device='cpu',
                       hydra_overrides_extra=[f'++model.image_size={IMG}'])
    # some parts start at zero or constants: randomise them all so every key is checked
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    return model.eval()


@pytest.fixture(scope='module')
def sam21_file(sam21_tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp('sam2') / 'sam2.1_hiera_tiny_random.pt'
    torch.save({'model': sam21_tiny.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def predictor_and_features(sam21_tiny):
    """SAM2ImagePredictor with an image set, and the encoder's FPN levels of the same input."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    predictor = SAM2ImagePredictor(sam21_tiny)
    grid = IMG // 16
    predictor._bb_feat_sizes = [(4 * grid, 4 * grid), (2 * grid, 2 * grid), (grid, grid)]
    image = np.random.default_rng(0).integers(0, 256, (IMG, IMG, 3), dtype=np.uint8)
    predictor.set_image(image)
    with torch.no_grad():
        # SAM2ImageEncoder's output: backbone_fpn before conv_s0 / conv_s1
        features = tuple(sam21_tiny.image_encoder(predictor._transforms(image)[None])
                         ['backbone_fpn'])
    return predictor, features


def sam2_parts(path, **decoder_options):
    prompt_encoder = dict(type='SAM2PromptEncoder', embed_dim=256, img_size=IMG,
                          checkpoint=path)
    mask_decoder = dict(type='SAM2MaskDecoder', transformer_dim=256, checkpoint=path,
                        **decoder_options)
    return prompt_encoder, mask_decoder


def build_head(head_type, path, **decoder_options):
    prompt_encoder, mask_decoder = sam2_parts(path, **decoder_options)
    loss = (dict(type='MultipleChoiceDiceLoss') if head_type == 'SAMMCLHead'
            else dict(type='MaskDiceLoss'))
    head = MODELS.build(dict(type=head_type, prompt_encoder=prompt_encoder,
                             mask_decoder=mask_decoder, loss_decode=loss))
    head.init_weights()
    return head.eval()


def sample(box=None, points=None, labels=None, mask=None):
    data = SegDataSample()
    meta = dict(img_shape=(IMG, IMG), ori_shape=(IMG, IMG), img_path='img.png')
    if box is not None:
        meta['prompt_box'] = list(box)
    if points is not None:
        meta.update(prompt_points=np.asarray(points), prompt_point_labels=np.asarray(labels))
    if mask is not None:
        meta['prompt_mask_logits'] = mask
    data.set_metainfo(meta)
    data.gt_sem_seg = PixelData(data=torch.zeros(1, IMG, IMG, dtype=torch.long))
    return data


BOX = np.array([20., 30., 90., 100.])


@pytest.mark.parametrize('dynamic', [False, True])
@pytest.mark.parametrize('multimask', [False, True])
def test_components_equal_image_predictor(sam21_tiny, sam21_file, predictor_and_features,
                                          multimask, dynamic):
    predictor, features = predictor_and_features
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = dynamic
    _, iou_ref, low_ref = predictor.predict(box=BOX, multimask_output=multimask,
                                            return_logits=True)
    pe_cfg, dec_cfg = sam2_parts(sam21_file, dynamic_multimask_via_stability=dynamic)
    prompt_encoder, decoder = MODELS.build(pe_cfg), MODELS.build(dec_cfg)
    prompt_encoder.init_weights()
    decoder.init_weights()
    decoder.eval()
    with torch.no_grad():
        embedding, high_res = decoder.prepare_features(features)
        sparse, dense = prompt_encoder(points=None, boxes=torch.tensor(BOX)[None].float(),
                                       masks=None)
        masks, iou = decoder.predict(embedding, prompt_encoder.get_dense_pe(), sparse, dense,
                                     high_res_features=high_res)
    masks, iou = (masks[:, 1:], iou[:, 1:]) if multimask else decoder.single_mask(masks, iou)
    assert masks.shape == (1, 3 if multimask else 1, IMG // 4, IMG // 4)
    np.testing.assert_allclose(masks[0].clamp(-32, 32).numpy(), low_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(iou[0].numpy(), iou_ref, atol=1e-5, rtol=0)
    # the official forward of the same module gives the same
    with torch.no_grad():
        official, official_iou, _, _ = decoder(embedding, prompt_encoder.get_dense_pe(), sparse,
                                               dense, multimask, False, high_res)
    torch.testing.assert_close(official, masks, atol=1e-6, rtol=0)
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = True


@pytest.mark.parametrize('head_type,multimask', [('MedSAMHead', False), ('SAMMCLHead', True)])
def test_box_heads_on_sam2_equal_image_predictor(sam21_tiny, sam21_file, predictor_and_features,
                                                 head_type, multimask):
    predictor, features = predictor_and_features
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = False
    _, _, low_ref = predictor.predict(box=BOX, multimask_output=multimask, return_logits=True)
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = True
    head = build_head(head_type, sam21_file)
    with torch.no_grad():
        logits = head.forward(features, [sample(box=BOX)])
    np.testing.assert_allclose(logits[0].clamp(-32, 32).numpy(), low_ref, atol=1e-5, rtol=0)


def test_medsam_head_with_dynamic_fallback_equals_predictor_default(sam21_file,
                                                                   predictor_and_features):
    predictor, features = predictor_and_features
    _, _, low_ref = predictor.predict(box=BOX, multimask_output=False, return_logits=True)
    head = build_head('MedSAMHead', sam21_file, dynamic_multimask_via_stability=True)
    with torch.no_grad():
        logits = head.forward(features, [sample(box=BOX)])
    np.testing.assert_allclose(logits[0].clamp(-32, 32).numpy(), low_ref, atol=1e-5, rtol=0)


def test_box_clicks_and_mask_prompt_equal_image_predictor(sam21_tiny, sam21_file,
                                                          predictor_and_features):
    predictor, features = predictor_and_features
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = False
    points, labels = np.array([[50., 60.], [30., 40.]]), np.array([1, 0])
    mask = np.random.default_rng(1).normal(size=(1, IMG // 4, IMG // 4)).astype(np.float32)
    _, _, low_ref = predictor.predict(point_coords=points, point_labels=labels, box=BOX,
                                      mask_input=mask, multimask_output=False,
                                      return_logits=True)
    _, _, low_points = predictor.predict(point_coords=points, point_labels=labels,
                                         multimask_output=False, return_logits=True)
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = True
    head = build_head('MedSAMHead', sam21_file)
    with torch.no_grad():
        logits = head.forward(features, [sample(BOX, points, labels, mask[0])])
        points_only = head.forward(features, [sample(points=points, labels=labels)])
    np.testing.assert_allclose(logits[0].clamp(-32, 32).numpy(), low_ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(points_only[0].clamp(-32, 32).numpy(), low_points, atol=1e-5,
                               rtol=0)


def test_token_mask_keeps_object_token_free(sam21_file, predictor_and_features):
    _, features = predictor_and_features
    _, dec_cfg = sam2_parts(sam21_file)
    decoder = MODELS.build(dec_cfg)
    decoder.init_weights()
    embedding, _ = decoder.prepare_features(features)
    sparse = torch.randn(1, 3, 256)
    dense = torch.randn(1, 256, *embedding.shape[-2:])
    pe = torch.randn(1, 256, *embedding.shape[-2:])
    with torch.no_grad():
        hs, src, obj = decoder.decode_tokens(embedding, pe, sparse, dense,
                                             return_object_token=True)
        # SAM 1's layout: IoU, 4 mask tokens, 3 prompt tokens; an all-ones mask changes nothing
        ones = torch.ones(1, 1 + 4 + 3, embedding.shape[-2] * embedding.shape[-1])
        hs1, src1, obj1 = decoder.decode_tokens(embedding, pe, sparse, dense, token_mask=ones,
                                                return_object_token=True)
        hs0, _, obj0 = decoder.decode_tokens(embedding, pe, sparse, dense,
                                             token_mask=ones * 0.1, return_object_token=True)
    assert hs.shape == (1, 8, 256) and obj.shape == (1, 256)
    torch.testing.assert_close(hs1, hs, atol=1e-5, rtol=0)
    torch.testing.assert_close(src1, src, atol=1e-5, rtol=0)
    torch.testing.assert_close(obj1, obj, atol=1e-5, rtol=0)
    assert (hs0 - hs).abs().max() > 1e-3


def test_sam2_parts_load_strictly_and_name_the_file(sam21_tiny, sam21_file, tmp_path):
    state = sam21_tiny.state_dict()
    missing = tmp_path / 'no_conv_s0.pt'
    torch.save({'model': {k: v for k, v in state.items()
                          if not k.startswith('sam_mask_decoder.conv_s0')}}, missing)
    decoder = MODELS.build(sam2_parts(str(missing))[1])
    with pytest.raises(RuntimeError, match=r'no_conv_s0\.pt.*missing keys.*conv_s0'):
        decoder.init_weights()
    narrow = MODELS.build(dict(type='SAM2MaskDecoder', transformer_dim=256,
                               use_high_res_features=False, checkpoint=sam21_file))
    with pytest.raises(RuntimeError, match='unexpected keys.*conv_s0'):
        narrow.init_weights()
    encoder = MODELS.build(dict(type='SAM2PromptEncoder', embed_dim=128, img_size=IMG,
                                checkpoint=sam21_file))
    with pytest.raises(RuntimeError, match='shape mismatches'):
        encoder.init_weights()
    absent = MODELS.build(dict(type='SAM2PromptEncoder', img_size=IMG,
                               checkpoint=str(tmp_path / 'sam2.1_hiera_tiny.pt')))
    with pytest.raises(FileNotFoundError, match='sam2.1_hiera_tiny.pt not found.*sam2'):
        absent.init_weights()
    # no_mem_embed comes from the file's top-level key
    decoder = MODELS.build(sam2_parts(sam21_file)[1])
    decoder.init_weights()
    torch.testing.assert_close(decoder.no_mem_embed.data, state['no_mem_embed'])


def test_more_class_tokens_copy_sam2s_four(sam21_tiny, sam21_file):
    decoder = MODELS.build(dict(type='SAM2MaskDecoder', transformer_dim=256,
                                num_multimask_outputs=8, checkpoint=sam21_file))
    decoder.init_weights()
    ref = sam21_tiny.sam_mask_decoder
    torch.testing.assert_close(decoder.mask_tokens.weight[:4], ref.mask_tokens.weight)
    torch.testing.assert_close(decoder.output_hypernetworks_mlps[3].layers[0].weight,
                               ref.output_hypernetworks_mlps[3].layers[0].weight)


def test_prepare_features_rejects_a_single_scale_encoder(sam21_file):
    decoder = MODELS.build(sam2_parts(sam21_file)[1])
    vit_like = (torch.randn(1, 256, 8, 8), torch.randn(1, 256, 8, 8))
    with pytest.raises(ValueError, match="needs SAM2ImageEncoder's FPN levels"):
        decoder.prepare_features(vit_like)
    no_high_res = MODELS.build(dict(type='SAM2MaskDecoder', transformer_dim=256,
                                    use_high_res_features=False))
    embedding, high_res = no_high_res.prepare_features(vit_like)
    assert high_res is None
    torch.testing.assert_close(embedding, vit_like[-1] + no_high_res.no_mem_embed.reshape(
        1, -1, 1, 1))


def sam2_reference_all_masks(model, predictor, sparse):
    """sam2's own MaskDecoder.predict_masks on the predictor's features: every token's mask."""
    features = predictor._features
    pe = model.sam_prompt_encoder
    grid = features['image_embed'].shape[-2:]
    dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *grid)
    with torch.no_grad():
        masks, iou, _, _ = model.sam_mask_decoder.predict_masks(
            image_embeddings=features['image_embed'], image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, repeat_image=False,
            high_res_features=features['high_res_feats'])
    return masks, iou


@pytest.mark.parametrize('head_type', ['SAMedHead', 'HSAMHead'])
def test_prompt_free_heads_on_sam2_equal_sam2s_decoder(sam21_tiny, sam21_file,
                                                       predictor_and_features, head_type):
    """Prompt-free: no sparse tokens, the no-mask embedding; 4 classes = SAM 2's 4 tokens, kept
    from the file (reinit_class_tokens=False). H-SAM's stage 1 is the same decoder call."""
    predictor, features = predictor_and_features
    ref, _ = sam2_reference_all_masks(sam21_tiny, predictor, torch.empty(1, 0, 256))
    prompt_encoder, mask_decoder = sam2_parts(sam21_file)
    head = MODELS.build(dict(type=head_type, num_classes=4, prompt_encoder=prompt_encoder,
                             mask_decoder=mask_decoder, reinit_class_tokens=False,
                             loss_decode=dict(type='CrossEntropyLoss')))
    head.init_weights()
    head.eval()
    with torch.no_grad():
        out = head.forward(features)
    logits = out[0] if head_type == 'HSAMHead' else out
    assert logits.shape == (1, 4, IMG // 4, IMG // 4)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=0)
    if head_type == 'HSAMHead':
        assert out[1].shape == (1, 4, IMG, IMG)  # stage 2 at the input size


@pytest.mark.parametrize('head_type', ['SeqSAMHead', 'PSAMHead'])
def test_seqsam_step0_and_psam_start_as_sam2s_single_mask(sam21_tiny, sam21_file,
                                                          predictor_and_features, head_type):
    """SeqSAM's conv1 starts as the identity on Z and pSAM's latent MLP at zero, so before
    training their first / every hypothesis is SAM 2's box-prompted token-0 mask."""
    predictor, features = predictor_and_features
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = False
    _, _, low_ref = predictor.predict(box=BOX, multimask_output=False, return_logits=True)
    sam21_tiny.sam_mask_decoder.dynamic_multimask_via_stability = True
    prompt_encoder, mask_decoder = sam2_parts(sam21_file)
    extra = dict(net_input='embedding') if head_type == 'PSAMHead' else {}
    head = MODELS.build(dict(type=head_type, prompt_encoder=prompt_encoder,
                             mask_decoder=mask_decoder, num_hypotheses=3,
                             loss_decode=dict(type='MaskDiceLoss'), **extra))
    head.init_weights()
    head.eval()
    with torch.no_grad():
        logits = head.forward(features, [sample(box=BOX)])
    assert logits.shape == (1, 3, IMG // 4, IMG // 4)
    first = logits[0, :1] if head_type == 'SeqSAMHead' else logits[0]
    for mask in first:
        np.testing.assert_allclose(mask.clamp(-32, 32).numpy(), low_ref[0], atol=1e-5, rtol=0)
    if head_type == 'SeqSAMHead':  # later steps re-encode the previous mask
        assert (logits[0, 1] - logits[0, 0]).abs().max() > 1e-4

"""InteractiveSession: one encoder pass, clicks and the previous mask reach SAM's decoder."""
import numpy as np
import pytest
import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

from conftest import SAM_MCL_RANDOM_CONFIG
from mmsam.apis import InteractiveSession, init_model
from mmsam.apis.scan_inference import inference_hypotheses

BOX = [5., 6., 30., 40.]  # pixels of the 48 (H) x 40 (W) image


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_model(str(SAM_MCL_RANDOM_CONFIG))


@pytest.fixture(scope='module')
def image():
    return np.random.default_rng(0).random((48, 40)).astype(np.float32)


def reference_modules(model):
    """segment-anything's PromptEncoder and MaskDecoder holding the model's head weights."""
    cfg = model.cfg.model.decode_head
    width, grid = cfg.prompt_encoder.embed_dim, cfg.prompt_encoder.img_size // 8
    prompt = PromptEncoder(embed_dim=width, image_embedding_size=(grid, grid),
                           input_image_size=(grid * 8, grid * 8), mask_in_chans=16)
    decoder = MaskDecoder(
        num_multimask_outputs=3, transformer_dim=width, iou_head_depth=3,
        iou_head_hidden_dim=cfg.mask_decoder.iou_head_hidden_dim,
        transformer=TwoWayTransformer(depth=2, embedding_dim=width,
                                      mlp_dim=cfg.mask_decoder.transformer_mlp_dim,
                                      num_heads=cfg.mask_decoder.transformer_num_heads))
    prompt.load_state_dict(model.decode_head.prompt_encoder.state_dict())
    decoder.load_state_dict(model.decode_head.mask_decoder.state_dict())
    return prompt.eval(), decoder.eval()


def test_two_calls_run_the_image_encoder_once(model, image):
    calls = []
    handle = model.backbone.register_forward_hook(lambda *args: calls.append(1))
    try:
        session = InteractiveSession(model, image)
        first = session.predict(box=BOX)
        second = session.predict(box=BOX, points=[[20., 25.]], point_labels=[1])
    finally:
        handle.remove()
    assert len(calls) == 1
    assert first.mask.shape == second.mask.shape == image.shape
    assert not np.array_equal(first.logits, second.logits)


def test_first_call_equals_the_box_inference(model, image):
    answer = InteractiveSession(model, image).predict(box=BOX)
    (expected, ) = inference_hypotheses(model, [image], [BOX])
    assert np.array_equal(answer.mask, expected.pred_sem_seg.data[0].numpy())
    assert np.array_equal(answer.hypotheses, expected.pred_hypotheses.data.numpy())
    assert answer.hypotheses.shape == (3, 48, 40)


def test_clicks_and_previous_mask_equal_segment_anything(model, image):
    prompt, decoder = reference_modules(model)
    session = InteractiveSession(model, image)
    first = session.predict(box=BOX)
    clicks, labels = [[20., 25.], [8., 10.]], [1, 0]
    second = session.predict(box=BOX, points=clicks, point_labels=labels)
    fresh = session.predict(points=clicks, point_labels=labels, use_previous=False)
    # the input frame: 128 x 128 from 48 (H) x 40 (W)
    scale = torch.tensor([128 / 40, 128 / 48])
    with torch.no_grad():
        embedding = model.backbone(session.inputs)[-1]
        points = (torch.tensor([clicks]) * scale, torch.tensor([labels]))
        boxes = torch.tensor([BOX]) * scale.repeat(2)
        for kwargs, ours in ((dict(points=None, boxes=boxes, masks=None), first),
                             (dict(points=points, boxes=boxes, masks=None), fresh),
                             (dict(points=points, boxes=boxes,
                                   masks=first.low_res_logits.sigmoid().mean(1, keepdim=True)
                                   .clamp(1e-6, 1 - 1e-6).logit()), second)):
            if ours is fresh:
                kwargs['boxes'] = None
            sparse, dense = prompt(**kwargs)
            ref, _ = decoder(embedding, prompt.get_dense_pe(), sparse, dense,
                             multimask_output=True)
            torch.testing.assert_close(ours.low_res_logits, ref, atol=1e-5, rtol=0)


def test_a_positive_click_in_a_missed_region_grows_the_mask_there(model, image):
    session = InteractiveSession(model, image)
    first = session.predict(box=BOX)
    missed = np.argwhere(first.mask == 0)
    y, x = missed[len(missed) // 2]
    second = session.predict(box=BOX, points=[[float(x), float(y)]], point_labels=[1])
    # the foreground logit at the click rises (the random decoder need not flip the pixel)
    assert second.logits[:, y, x].mean() > first.logits[:, y, x].mean()


@pytest.mark.parametrize('kwargs,match', [
    (dict(), 'give a box, points or both'),
    (dict(points=[[50., 3.]]), 'outside the 40 x 48'),
    (dict(points=[[5., 3.]], point_labels=[2]), 'point_labels must'),
    (dict(box=[1., 2., 3.]), 'box must be'),
])
def test_bad_prompts_are_named(model, image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        InteractiveSession(model, image).predict(**kwargs)


def test_a_prompt_free_model_is_refused():
    from mmsam.models.segmentors import SAMSegmentor

    class Fake(SAMSegmentor):
        def __init__(self):
            torch.nn.Module.__init__(self)

    with pytest.raises(ValueError, match='box-prompted model'):
        InteractiveSession(Fake(), np.zeros((8, 8)))

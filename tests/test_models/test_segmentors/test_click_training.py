"""Iterative click training (MultiHypothesisSegmentor train_cfg.click_iterations)."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import TINY_IMG
from conftest import tiny_box_prompt_segmentor_cfg as segmentor_cfg
from mmsam.datasets.transforms.click_simulator import next_click
from mmsam.models.segmentors.click_training import prediction_masks
from mmsam.registry import MODELS

# The hand-worked case, on a 64 x 64 image: a 9 x 9 object centred at (x=34, y=24).
OBJECT = (slice(20, 29), slice(30, 39))
FALSE_POSITIVE = (slice(40, 47), slice(5, 12))  # 7 x 7, centred at (x=8, y=43)


def object_mask():
    mask = torch.zeros(TINY_IMG, TINY_IMG, dtype=torch.uint8)
    mask[OBJECT] = 1
    return mask


def samples(n=1, gt=None):
    out = []
    for i in range(n):
        label = object_mask() if gt is None else gt[i]
        s = SegDataSample(gt_sem_seg=PixelData(data=label[None].long()),
                          gt_annotations=PixelData(data=label[None].repeat(2, 1, 1)))
        s.set_metainfo(dict(prompt_box=np.array([28., 18., 40., 30.], np.float32),
                            ori_shape=(TINY_IMG, TINY_IMG), img_shape=(TINY_IMG, TINY_IMG),
                            img_path=f'{i}.npz'))
        out.append(s)
    return out


def build(iterations=None, head='MedSAMHead', frozen=True, **train_cfg):
    cfg = segmentor_cfg(head)
    if head == 'MedSAMHead':
        cfg['decode_head']['train_target'] = 'prompted'
    cfg['backbone']['frozen'] = frozen
    if iterations is not None:
        train_cfg['click_iterations'] = iterations
    cfg['train_cfg'] = train_cfg or None
    torch.manual_seed(0)
    return MODELS.build(cfg).train()


@pytest.mark.parametrize('iterations', [0, 1, 3])
def test_the_encoder_runs_once_per_step_whatever_the_number_of_clicks(iterations):
    model = build(iterations)
    encoder_calls, decoder_calls = [], []
    model.backbone.register_forward_hook(lambda *args: encoder_calls.append(1))
    model.decode_head.mask_decoder.iou_prediction_head.register_forward_hook(
        lambda *args: decoder_calls.append(1))
    losses = model.loss(torch.rand(2, 3, TINY_IMG, TINY_IMG), samples(2))
    assert len(encoder_calls) == 1
    assert len(decoder_calls) == iterations + 1  # one decoder pass per round
    assert all(torch.isfinite(v) for v in losses.values())


def test_clicks_follow_the_largest_error_of_the_previous_round_worked_by_hand(monkeypatch):
    """A patched head scripts each round's prediction; the clicks and mask prompts it receives
    are worked out by hand from the 9 x 9 object."""
    model = build(3)
    empty = torch.full((TINY_IMG, TINY_IMG), -10.)
    with_false_positive = empty.clone()
    with_false_positive[OBJECT] = 10.
    with_false_positive[FALSE_POSITIVE] = 10.
    exact = empty.clone()
    exact[OBJECT] = 10.
    script = [empty, with_false_positive, exact, exact]
    scale = torch.nn.Parameter(torch.ones(()))
    seen = []

    def scripted_forward(feats, batch_samples):
        seen.append([dict(s.metainfo) for s in batch_samples])
        return scale * script[len(seen) - 1][None, None]

    monkeypatch.setattr(model.decode_head, 'forward', scripted_forward)
    losses = model.loss(torch.rand(1, 3, TINY_IMG, TINY_IMG), samples(1))
    assert len(seen) == 4
    assert 'prompt_points' not in seen[0][0] and 'prompt_mask_logits' not in seen[0][0]
    # round 0 missed the whole object: a positive click at its centre
    np.testing.assert_array_equal(seen[1][0]['prompt_points'], [[34., 24.]])
    np.testing.assert_array_equal(seen[1][0]['prompt_point_labels'], [1])
    # round 1 found it and a 7 x 7 false positive: a negative click at that block's centre
    np.testing.assert_array_equal(seen[2][0]['prompt_points'], [[34., 24.], [8., 43.]])
    np.testing.assert_array_equal(seen[2][0]['prompt_point_labels'], [1, 0])
    # round 2 was exact: no new click
    np.testing.assert_array_equal(seen[3][0]['prompt_points'], [[34., 24.], [8., 43.]])
    for step in (1, 2, 3):  # the previous round's logits come back as the mask prompt
        fed = seen[step][0]['prompt_mask_logits']
        assert not fed.requires_grad
        torch.testing.assert_close(fed, script[step - 1])
        np.testing.assert_array_equal(seen[step][0]['prompt_box'], [28., 18., 40., 30.])
    # the loss is the mean over the rounds of the head's own loss of each round
    rounds = [model.decode_head.loss_by_feat(logits[None, None], samples(1))
              for logits in script]
    for key in rounds[0]:
        torch.testing.assert_close(losses[f'decode.{key}'],
                                   torch.stack([r[key] for r in rounds]).mean())
    torch.testing.assert_close(losses['decode.round0'],
                               sum(v for k, v in rounds[0].items() if 'loss' in k))
    # no gradient through the click choice: only the scripted logits' scale is reached
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert scale.grad is not None and torch.isfinite(scale.grad)


def test_clicks_equal_next_click_on_the_real_models_previous_prediction(monkeypatch):
    model = build(2)
    head = model.decode_head
    forward = head.forward
    rounds = []

    def recording_forward(feats, batch_samples):
        logits = forward(feats, batch_samples)
        rounds.append(([dict(s.metainfo) for s in batch_samples], logits.detach()))
        return logits

    monkeypatch.setattr(head, 'forward', recording_forward)
    gt = [object_mask(), torch.zeros(TINY_IMG, TINY_IMG, dtype=torch.uint8)]
    gt[1][5:40, 10:20] = 1
    data = samples(2, gt)
    from mmsam.models.segmentors import click_training
    rng = np.random.default_rng(7)
    losses = click_training.click_training_losses(model, torch.rand(2, 3, TINY_IMG, TINY_IMG),
                                                  data, 2, rng=rng)
    assert set(losses) >= {'loss_dice', 'loss_bce', 'round0', 'round2'}
    expected_rng = np.random.default_rng(7)
    expected = [np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)]
    for step in (1, 2):
        metas, logits = rounds[step - 1]
        preds = prediction_masks(logits, data, (TINY_IMG, TINY_IMG), False, 0.5)
        for i in range(2):
            # the independent check: upsampled logits > 0 are the prediction (threshold 0.5)
            up = torch.nn.functional.interpolate(logits, size=(TINY_IMG, TINY_IMG),
                                                 mode='bilinear', align_corners=False)
            np.testing.assert_array_equal(preds[i], (up[i, 0] > 0).numpy())
            click = next_click(preds[i], gt[i].numpy(), expected_rng)
            if click is not None:
                expected[i] = np.concatenate([expected[i], click[0][None]])
            np.testing.assert_array_equal(rounds[step][0][i]['prompt_points'], expected[i])
            torch.testing.assert_close(rounds[step][0][i]['prompt_mask_logits'],
                                       logits[i, 0])


def test_gradients_are_finite_and_reach_the_encoder_and_decoder():
    model = build(3, frozen=False)
    losses = model.loss(torch.rand(2, 3, TINY_IMG, TINY_IMG), samples(2))
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items()
               if n.startswith('backbone.'))
    def reached(prefix):
        return any(g is not None and g.abs().sum() > 0 for n, g in grads.items()
                   if n.startswith(prefix))
    assert reached('decode_head.mask_decoder.')
    # the clicks (SAM's point embeddings 0: negative, 1: positive) and the fed-back mask
    # (mask_downscaling) are trained; the box-only loss never reaches them
    assert reached('decode_head.prompt_encoder.point_embeddings.0') or reached(
        'decode_head.prompt_encoder.point_embeddings.1')
    assert reached('decode_head.prompt_encoder.mask_downscaling.')
    assert not losses['decode.round3'].requires_grad


@pytest.mark.parametrize('head', ['MedSAMHead', 'SAMMCLHead'])
def test_zero_iterations_is_the_box_only_loss_exactly(head):
    inputs, data = torch.rand(2, 3, TINY_IMG, TINY_IMG), samples(2)
    plain, zero, clicks = build(None, head), build(0, head), build(2, head)
    torch.manual_seed(1)
    expected = plain.loss(inputs, data)
    torch.manual_seed(1)
    got = zero.loss(inputs, data)
    assert set(got) == set(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    # with clicks, round 0 is that same box-only loss
    torch.manual_seed(1)
    first = clicks.loss(inputs, data)['decode.round0']
    torch.testing.assert_close(first, sum(v for k, v in expected.items() if 'loss' in k))


def test_bad_train_cfg_and_heads_are_refused():
    with pytest.raises(ValueError, match='click_iterations must be an int >= 0'):
        build(-1)
    with pytest.raises(ValueError, match='click_iterations must be an int >= 0'):
        build(1.5)
    with pytest.raises(ValueError, match=r"\['clicks'\] are read by nothing"):
        build(None, clicks=3)
    with pytest.raises(ValueError, match='feed_back_mask must be True or False'):
        build(2, feed_back_mask='yes')
    cfg = segmentor_cfg('SeqSAMHead')
    cfg['decode_head'].update(loss_decode=dict(type='HungarianDiceLoss'))
    cfg['train_cfg'] = dict(click_iterations=2)
    with pytest.raises(TypeError, match='SeqSAMHead defines its own loss'):
        MODELS.build(cfg)


def test_without_feedback_no_mask_prompt_is_given(monkeypatch):
    model = build(2, feed_back_mask=False)
    forward, seen = model.decode_head.forward, []

    def recording_forward(feats, batch_samples):
        seen.append([dict(s.metainfo) for s in batch_samples])
        return forward(feats, batch_samples)

    monkeypatch.setattr(model.decode_head, 'forward', recording_forward)
    model.loss(torch.rand(1, 3, TINY_IMG, TINY_IMG), samples(1))
    assert all('prompt_mask_logits' not in m[0] for m in seen)
    assert len(seen[2][0]['prompt_points']) == 2

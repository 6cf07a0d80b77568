"""The CVPR25 interactive protocol in MultiHypothesisSegmentor.predict (test_cfg.interactive)."""
import zlib

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import TINY_IMG
from conftest import tiny_box_prompt_segmentor_cfg as segmentor_cfg
from mmsam.datasets.transforms.click_simulator import next_click
from mmsam.models.decode_heads.box_prompt_head import mean_probability_logit
from mmsam.models.utils.next_click_suggestion import suggest_next_click
from mmsam.registry import MODELS

ORI = (40, 48)


def samples(n):
    out = []
    for i in range(n):
        gt = torch.zeros(1, *ORI, dtype=torch.uint8)
        gt[0, 8 + i:30, 10:34] = 1
        gt[0, 12:20, 14:20] = 0  # a hole: the random model gets it wrong somewhere
        s = SegDataSample(gt_sem_seg=PixelData(data=gt))
        s.set_metainfo(dict(prompt_box=np.array([10., 8. + i, 33., 29.], np.float32),
                            ori_shape=ORI, img_shape=(TINY_IMG, TINY_IMG), img_path=f'{i}.npz'))
        out.append(s)
    return out


def build(head='SAMMCLHead', **interactive):
    torch.manual_seed(0)
    interactive = dict(dict(num_clicks=3), **interactive)
    return MODELS.build(segmentor_cfg(head, interactive=interactive)).eval()


@pytest.mark.parametrize('user', ['error', 'suggestion'])
def test_backbone_runs_once_and_steps_are_stored(user):
    model = build(user=user)
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        out = model.predict(torch.randn(2, 3, TINY_IMG, TINY_IMG), samples(2))
    assert len(calls) == 1  # one encoder pass for the batch, over all 4 steps
    for s in out:
        assert s.interactive_steps.data.shape == (4, *ORI)
        assert s.interactive_steps.data.dtype == torch.uint8
        assert len(s.interactive_clicks) == 4 and s.interactive_clicks[0]['source'] == 'box'
        assert torch.equal(s.pred_sem_seg.data[0].to(torch.uint8), s.interactive_steps.data[-1])
        made = [c for c in s.interactive_clicks[1:] if c['point'] is not None]
        assert len(s.prompt_points) == len(made)
        sources = {c['source'] for c in made}
        assert sources <= ({'error'} if user == 'error' else {'suggestion', 'error_fallback'})


def test_step_zero_equals_the_one_shot_box_prediction():
    model = build()
    oneshot = MODELS.build(segmentor_cfg('SAMMCLHead')).eval()
    oneshot.load_state_dict(model.state_dict())
    inputs = torch.randn(2, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        out = model.predict(inputs, samples(2))
        ref = oneshot.predict(inputs, samples(2))
    for s, r in zip(out, ref):
        assert torch.equal(s.interactive_steps.data[0], r.pred_sem_seg.data[0].to(torch.uint8))


def test_clicks_follow_next_click_and_the_logits_are_fed_back():
    """Replays the protocol by hand: each click is next_click on the previous step's mask
    (seeded as the protocol seeds it), each step the head on box + clicks + the previous
    low-res logits (mean probability of the hypotheses)."""
    model = build(seed=3)
    inputs = torch.randn(1, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        (out, ) = model.predict(inputs, samples(1))
        sample = samples(1)[0]
        gt = sample.gt_sem_seg.data[0].numpy() != 0
        low = model.low_res_hypotheses(inputs, [sample])
        pred = model.write_hypotheses(inputs, [sample.clone()], low)[0].pred_sem_seg.data[0]
        points, labels = [], []
        key = zlib.crc32(b'0.npz')
        for step in range(1, 4):
            click = next_click(pred.numpy(), gt, np.random.default_rng([3, key, step]))
            assert click is not None
            assert out.interactive_clicks[step]['point'] == click[0].tolist()
            assert out.interactive_clicks[step]['label'] == click[1]
            points.append(click[0].tolist())
            labels.append(click[1])
            step_sample = sample.clone()
            step_sample.set_metainfo(dict(
                prompt_points=np.array(points, np.float32),
                prompt_point_labels=np.array(labels), prompt_mask_logits=mean_probability_logit(
                    low)[0, 0]))
            low = model.low_res_hypotheses(inputs, [step_sample])
            pred = model.write_hypotheses(inputs, [step_sample], low)[0].pred_sem_seg.data[0]
            assert torch.equal(out.interactive_steps.data[step], pred.to(torch.uint8))


def test_suggestion_user_clicks_at_the_suggestion_labelled_by_the_ground_truth():
    model = build(user='suggestion', keep_agreement=True)
    with torch.no_grad():
        (out, ) = model.predict(torch.randn(1, 3, TINY_IMG, TINY_IMG), samples(1))
    gt = out.gt_sem_seg.data[0].numpy()
    agreement = out.interactive_agreement.data.numpy()
    assert agreement.shape == (4, *ORI) and agreement.min() >= 0.5
    sources = [c['source'] for c in out.interactive_clicks[1:]]
    assert 'suggestion' in sources, sources
    for step in range(1, 4):
        click = out.interactive_clicks[step]
        if click['source'] != 'suggestion':
            continue
        x, y = (int(v) for v in click['point'])
        assert click['label'] == int(gt[y, x])
        assert click['agreement'] == pytest.approx(agreement[step - 1][y, x])


def test_perfect_mask_gets_no_click():
    """With the box prediction as the ground truth there is no error: no click, the mask
    stays (and the suggestion of all-agreeing hypotheses is None)."""
    assert suggest_next_click(np.zeros((3, 4, 4))) is None
    model = build(num_clicks=2)
    ref = MODELS.build(segmentor_cfg('SAMMCLHead')).eval()
    ref.load_state_dict(model.state_dict())
    inputs = torch.zeros(1, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        gt = ref.predict(inputs, samples(1))[0].pred_sem_seg.data.to(torch.uint8)
        sample = samples(1)[0]
        sample.gt_sem_seg = PixelData(data=gt)
        (out, ) = model.predict(inputs, [sample])
    assert [c['source'] for c in out.interactive_clicks] == ['box', None, None]
    assert (out.interactive_steps.data == gt[0]).all()


def test_bad_interactive_cfg_is_named():
    with pytest.raises(ValueError, match='user'):
        MODELS.build(segmentor_cfg('SAMMCLHead', interactive=dict(user='oracle')))
    with pytest.raises(ValueError, match='unknown keys'):
        MODELS.build(segmentor_cfg('SAMMCLHead', interactive=dict(clicks=5)))
    model = build()
    sample = samples(1)[0]
    del sample.gt_sem_seg
    with pytest.raises(KeyError, match='gt_sem_seg'):
        model.predict(torch.randn(1, 3, TINY_IMG, TINY_IMG), [sample])


def test_resized_label_falls_back_to_the_prompted_reader():
    sample = samples(1)[0]
    readers = torch.zeros(2, *ORI, dtype=torch.uint8)
    readers[1, 10:20, 12:30] = 1
    sample.gt_annotations = PixelData(data=readers)
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, TINY_IMG, TINY_IMG, dtype=torch.uint8))
    sample.set_metainfo(dict(prompt_annotation=1))
    with torch.no_grad():
        (out, ) = build(num_clicks=1).predict(torch.randn(1, 3, TINY_IMG, TINY_IMG), [sample])
    assert torch.equal(out.interactive_target.data[0], readers[1])
    assert out.interactive_clicks[1]['label'] in (0, 1)
    x, y = (int(v) for v in out.interactive_clicks[1]['point'])
    step0 = out.interactive_steps.data[0].numpy()
    assert step0[y, x] != readers[1, y, x]  # the click lies in an error of that reader's mask

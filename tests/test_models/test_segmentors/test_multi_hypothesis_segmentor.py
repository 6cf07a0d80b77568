import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import TINY_ARCH, TINY_IMG
from conftest import tiny_box_prompt_segmentor_cfg as segmentor_cfg
from mmsam.registry import MODELS

WIDTH = TINY_ARCH['out_chans']


def samples(n, ori=(40, 48)):
    out = []
    for i in range(n):
        s = SegDataSample(gt_annotations=PixelData(data=torch.zeros(4, *ori, dtype=torch.uint8)))
        s.set_metainfo(dict(prompt_box=[4. + i, 5., 30., 35.], ori_shape=ori,
                            img_shape=(TINY_IMG, TINY_IMG), img_path=f'{i}.npz'))
        out.append(s)
    return out


def test_predict_gives_m_hypotheses_and_their_majority_at_the_original_size():
    model = MODELS.build(segmentor_cfg(return_logits=True)).eval()
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        out = model.predict(torch.randn(2, 3, TINY_IMG, TINY_IMG), samples(2))
    assert len(calls) == 1  # one encoder pass for the whole batch and all hypotheses
    for s in out:
        hyps, logits = s.pred_hypotheses.data, s.hypothesis_logits.data
        assert hyps.shape == logits.shape == (3, 40, 48) and hyps.dtype == torch.bool
        torch.testing.assert_close(hyps, logits > 0)  # threshold 0.5 on sigmoid
        votes = hyps.sum(0)
        assert torch.equal(s.pred_sem_seg.data[0].bool(), votes >= 2)


def test_hypotheses_are_the_head_outputs_resized_as_segment_anything(tiny_sam):
    """The hypotheses' logits at the original size are segment-anything's
    ``Sam.postprocess_masks`` of the head's low-resolution logits."""
    model = MODELS.build(segmentor_cfg('MedSAMHead', return_logits=True)).eval()
    inputs, data = torch.randn(1, 3, TINY_IMG, TINY_IMG), samples(1)
    assert tiny_sam.image_encoder.img_size == TINY_IMG
    with torch.no_grad():
        head_logits = model.decode_head.predict_hypotheses(model.extract_feat(inputs), data)
        out = model.predict(inputs, data)[0]
        expected = tiny_sam.postprocess_masks(head_logits, (TINY_IMG, TINY_IMG), (40, 48))[0]
    torch.testing.assert_close(out.hypothesis_logits.data, expected)
    # M = 1: the consensus is the single hypothesis
    assert torch.equal(out.pred_sem_seg.data[0].bool(), out.pred_hypotheses.data[0])
    assert 'hypothesis_logits' not in MODELS.build(segmentor_cfg('MedSAMHead')).eval().predict(
        inputs, samples(1))[0]


def test_bad_test_cfg_and_heads_are_refused():
    with pytest.raises(ValueError, match='num_hypotheses'):
        MODELS.build(segmentor_cfg(num_hypotheses=0))
    model = MODELS.build(segmentor_cfg(num_hypotheses=10)).eval()
    with pytest.raises(ValueError, match='always gives 3'):
        model.predict(torch.randn(1, 3, TINY_IMG, TINY_IMG), samples(1))
    cfg = segmentor_cfg()
    cfg['decode_head'] = dict(cfg['decode_head'], type='SAMedHead', num_classes=2,
                              loss_decode=dict(type='MultiClassDiceLoss'))
    with pytest.raises(TypeError, match='predict_hypotheses'):
        MODELS.build(cfg)


def test_medsam_official_output_resize_thresholds_the_resized_low_res_probabilities():
    """output_resize='low_res_probabilities': MedSAM_Inference's rule, written out with
    torch's own ops on the head's low-res logits (one bilinear resize of the sigmoid)."""
    torch.manual_seed(0)
    model = MODELS.build(segmentor_cfg('MedSAMHead',
                                       output_resize='low_res_probabilities')).eval()
    inputs, data = torch.randn(1, 3, TINY_IMG, TINY_IMG), samples(1, ori=(37, 53))
    with torch.no_grad():
        low = model.low_res_hypotheses(inputs, data)  # (1, 1, 16, 16)
        (out, ) = model.predict(inputs, data)
    expected = torch.nn.functional.interpolate(low.sigmoid(), size=(37, 53), mode='bilinear',
                                               align_corners=False)[0] > 0.5
    assert torch.equal(out.pred_hypotheses.data, expected)
    with pytest.raises(ValueError, match="output_resize='nearest'"):
        MODELS.build(segmentor_cfg('MedSAMHead', output_resize='nearest'))

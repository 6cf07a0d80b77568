"""InteractiveProtocolMetric and click_curve_auc on hand-worked per-step values."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.evaluation.functional import click_curve_auc, nsd
from mmsam.evaluation.metrics import InteractiveProtocolMetric


def test_click_curve_auc_by_hand():
    scores = [0.0, 1.0, 2 / 3, 1.0, 1.0, 1.0]
    # the challenge's: steps 1..5, unit spacing: (1 + 2/3)/2 + (2/3 + 1)/2 + 1 + 1
    assert click_curve_auc(scores) == pytest.approx(5 / 6 + 5 / 6 + 2)
    # all steps, normalised: (0.5 + 5/6 + 5/6 + 1 + 1) / 5
    assert click_curve_auc(scores, clicks_only=False, normalise=True) == pytest.approx(
        (0.5 + 5 / 3 + 2) / 5)
    assert np.isnan(click_curve_auc([0.5, 0.7]))  # one click step: no interval


def make_sample(steps, label, spacing=None, points=None):
    sample = SegDataSample(gt_sem_seg=PixelData(data=torch.from_numpy(label[None])))
    sample.interactive_steps = PixelData(data=torch.from_numpy(np.stack(steps).astype(np.uint8)))
    points = points or [None] * (len(steps) - 1)
    sample.interactive_clicks = [dict(source='box')] + [
        dict(source='error', point=p) for p in points[:-1]] + [dict(source=None, point=None)]
    if spacing is not None:
        sample.set_metainfo(dict(spacing=spacing))
    return sample


def test_metric_per_step_auc_and_final_by_hand():
    label = np.zeros((12, 12), np.uint8)
    label[2:6, 2:6] = 1  # 16 pixels
    empty, exact, half, speck = (np.zeros_like(label), label.copy(), label.copy(),
                                 np.zeros_like(label))
    half[4:6] = 0  # 8 of 16: Dice 2*8/24 = 2/3
    speck[2, 2] = 1  # 1 of 16: Dice 2/17 < 0.2, so NSD is gated to 0
    steps = [empty, exact, half, speck, exact, exact]
    metric = InteractiveProtocolMetric(nsd_tolerance=1.0)
    # clicks after steps 0..3: (3, 3) missed by the empty mask; (0, 0) right in the exact
    # mask; (4, 5) missed by the half mask; (2, 2) right in the speck
    points = [[3, 3], [0, 0], [4, 5], [2, 2], None]
    metric.process(None, [make_sample(steps, label, points=points).to_dict()])
    out = metric.compute_metrics(metric.results)
    assert out['clicks_on_error'] == 0.5
    dsc = [0, 1, 2 / 3, 2 / 17, 1, 1]
    nsd_half = nsd(half, label, None, 1.0)
    assert 0 < nsd_half < 1
    nsds = [0, 1, nsd_half, 0, 1, 1]  # step 3: gated (Dice <= 0.2) though its NSD is > 0
    assert nsd(speck, label, None, 1.0) > 0
    for s in range(6):
        assert out[f'DSC_step{s}'] == pytest.approx(dsc[s])
        assert out[f'NSD_step{s}'] == pytest.approx(nsds[s])
    assert out['DSC_AUC'] == pytest.approx(
        (1 + 2 / 3) / 2 + (2 / 3 + 2 / 17) / 2 + (2 / 17 + 1) / 2 + 1)
    assert out['NSD_AUC'] == pytest.approx((1 + nsd_half) / 2 + nsd_half / 2 + 1 / 2 + 1)
    assert out['DSC_AUC_norm'] == pytest.approx(
        (0.5 + (1 + 2 / 3) / 2 + (2 / 3 + 2 / 17) / 2 + (2 / 17 + 1) / 2 + 1) / 5)
    assert out['DSC_final'] == out['NSD_final'] == 1.0
    assert out['clicks_error'] == 4 and out['clicks_suggestion'] == 0


def test_metric_spacing_empty_target_and_means_over_images():
    label = np.zeros((10, 10), np.uint8)
    label[3:7, 3:7] = 1
    shifted = np.roll(label, 1, axis=1)  # one column off: 0.5 mm (within 1 mm) or 3 mm
    metric = InteractiveProtocolMetric(nsd_tolerance=1.0)
    wide = make_sample([shifted] * 3, label, spacing=(1.0, 0.5))
    narrow = make_sample([shifted] * 3, label, spacing=(1.0, 3.0))
    none = make_sample([np.zeros_like(label)] * 3, np.zeros_like(label))
    metric.process(None, [s.to_dict() for s in (wide, narrow, none)])
    out = metric.compute_metrics(metric.results)
    expected = np.mean([nsd(shifted, label, (1.0, 0.5), 1.0),
                        nsd(shifted, label, (1.0, 3.0), 1.0), 1.0])
    assert nsd(shifted, label, (1.0, 0.5), 1.0) > nsd(shifted, label, (1.0, 3.0), 1.0)
    assert out['NSD_step0'] == pytest.approx(expected)
    assert out['DSC_step2'] == pytest.approx(np.mean([0.75, 0.75, 1.0]))


def test_metric_names_missing_fields():
    metric = InteractiveProtocolMetric()
    with pytest.raises(KeyError, match='interactive_steps'):
        metric.process(None, [SegDataSample(gt_sem_seg=PixelData(
            data=torch.zeros(1, 4, 4))).to_dict()])

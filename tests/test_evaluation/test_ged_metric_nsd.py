"""GEDMetric(nsd_tolerance=...): NSD_avg of the majority vote, against surface-distance."""
import numpy as np
import pytest
import surface_distance.metrics as reference  # DeepMind's package, the test reference
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.evaluation.metrics import GEDMetric


def reference_nsd(pred, gt, spacing, tolerance):
    distances = reference.compute_surface_distances(gt.astype(bool), pred.astype(bool), spacing)
    return reference.compute_surface_dice_at_tolerance(distances, tolerance)


def sample(preds, gts, spacing=None):
    s = SegDataSample(pred_hypotheses=PixelData(data=torch.from_numpy(preds)),
                      gt_annotations=PixelData(data=torch.from_numpy(gts)))
    if spacing is not None:
        s.set_metainfo(dict(spacing=spacing))
    return s.to_dict()


def test_nsd_avg_equals_surface_distance_of_the_vote_per_annotation():
    rng = np.random.default_rng(0)
    gts = np.zeros((2, 16, 20), np.uint8)
    gts[0, 4:11, 5:14] = 1
    gts[1, 5:12, 6:16] = 1
    preds = np.zeros((3, 16, 20), bool)
    preds[:, 3:10, 4:13] = True
    preds[0] |= rng.random((16, 20)) < 0.1  # noise in one hypothesis: outvoted
    vote = preds.sum(0) >= 2
    metric = GEDMetric(nsd_tolerance=1.0)
    metric.process(None, [sample(preds, gts, spacing=(3.0, 0.8, 1.2)),
                          sample(preds, gts)])
    out = metric.compute_metrics(metric.results)
    with_spacing = np.mean([reference_nsd(vote, g, (0.8, 1.2), 1.0) for g in gts])
    in_pixels = np.mean([reference_nsd(vote, g, (1.0, 1.0), 1.0) for g in gts])
    assert with_spacing != pytest.approx(in_pixels)
    assert out['NSD_avg'] == pytest.approx(100 * (with_spacing + in_pixels) / 2)
    assert 'NSD_avg' not in GEDMetric().compute_metrics(metric.results)


def test_nsd_avg_empty_convention_follows_empty_dice():
    empty = np.zeros((2, 8, 8), np.uint8)
    for empty_dice in (0.0, 1.0):
        metric = GEDMetric(empty_dice=empty_dice, nsd_tolerance=2.0)
        metric.process(None, [sample(empty.astype(bool), empty)])
        assert metric.compute_metrics(metric.results)['NSD_avg'] == 100 * empty_dice
    with pytest.raises(ValueError, match='nsd_tolerance'):
        GEDMetric(nsd_tolerance=-1)

"""Tests of VolumeDiceHD95Metric on a small synthetic two-case dataset."""
import csv

import numpy as np
import pytest
import torch

from mmsam.evaluation import VolumeDiceHD95Metric
from mmsam.evaluation.functional import dice_hd95
from mmsam.registry import METRICS

CLASSES = ('background', 'liver', 'kidney')
SPACINGS = {'case_a': (3.0, 0.8, 0.8), 'case_b': (1.5, 1.2, 1.0)}


@pytest.fixture
def volumes():
    """case_id -> (pred, gt) uint8 (D, H, W) label volumes; case_b has no kidney in gt."""
    rng = np.random.default_rng(0)
    out = {}
    for case_id, depth in (('case_a', 5), ('case_b', 3)):
        gt = np.zeros((depth, 16, 16), np.uint8)
        gt[:, 2:9, 3:11] = 1
        if case_id == 'case_a':
            gt[1:4, 10:14, 9:15] = 2
        pred = gt.copy()
        flip = rng.random(gt.shape) < 0.1
        pred[flip] = rng.integers(0, 3, flip.sum())
        out[case_id] = pred, gt
    return out


def make_samples(volumes):
    samples = []
    for case_id, (pred, gt) in volumes.items():
        for z in range(len(gt)):
            samples.append(dict(
                pred_sem_seg=dict(data=torch.from_numpy(pred[z][None]).long()),
                gt_sem_seg=dict(data=torch.from_numpy(gt[z][None]).long()),
                case_id=case_id, slice_index=z, num_slices=len(gt),
                spacing=list(SPACINGS[case_id])))
    return samples


def expected_metrics(volumes, use_spacing):
    """Per-case scores computed directly on the volumes, averaged over cases then classes."""
    scores = np.array([[dice_hd95(pred == c, gt == c,
                                  SPACINGS[case_id] if use_spacing else None)
                        for c in range(1, len(CLASSES))]
                       for case_id, (pred, gt) in volumes.items()])  # (case, class, 2)
    scores[..., 0] *= 100
    per_class = scores.mean(0)
    expected = {'mDice': per_class[:, 0].mean(), 'mHD95': per_class[:, 1].mean()}
    for name, (dice, hd) in zip(CLASSES[1:], per_class):
        expected[f'Dice.{name}'], expected[f'HD95.{name}'] = dice, hd
    return expected, scores


def run_metric(metric, samples, seed=0):
    """Feed ``samples`` in shuffled order over two ``process`` calls, then evaluate."""
    order = np.random.default_rng(seed).permutation(len(samples))
    shuffled = [samples[i] for i in order]
    metric.dataset_meta = dict(classes=CLASSES)
    half = len(shuffled) // 2
    metric.process({}, shuffled[:half])
    metric.process({}, shuffled[half:])
    return metric.evaluate(len(shuffled))


@pytest.mark.parametrize('use_spacing', [False, True])
def test_matches_per_case_computation(volumes, use_spacing):
    metric = METRICS.build(dict(type='VolumeDiceHD95Metric', use_spacing=use_spacing))
    result = run_metric(metric, make_samples(volumes))
    expected, scores = expected_metrics(volumes, use_spacing)
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
    assert scores[1, 1].tolist() == [100.0, 0.0]  # case_b kidney: predicted, absent in gt
    assert 0 < result['Dice.liver'] < 100 and result['HD95.liver'] > 0


def test_spacing_changes_hd95(volumes):
    voxels = run_metric(VolumeDiceHD95Metric(), make_samples(volumes))
    mm = run_metric(VolumeDiceHD95Metric(use_spacing=True), make_samples(volumes))
    assert mm['mDice'] == pytest.approx(voxels['mDice'])
    assert mm['mHD95'] != pytest.approx(voxels['mHD95'])


def test_writes_csv(volumes, tmp_path):
    path = tmp_path / 'per_case.csv'
    run_metric(VolumeDiceHD95Metric(output_file=str(path)), make_samples(volumes))
    _, scores = expected_metrics(volumes, use_spacing=False)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [(r['case_id'], r['class']) for r in rows] == [
        (case, name) for case in ('case_a', 'case_b') for name in CLASSES[1:]]
    values = np.array([[float(r['dice_percent']), float(r['hd95'])] for r in rows])
    np.testing.assert_allclose(values, scores.reshape(-1, 2), atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ['per_case.csv']  # no temporary left


def test_duplicate_slice_is_ignored(volumes):
    samples = make_samples(volumes)
    result = run_metric(VolumeDiceHD95Metric(), samples + samples[:2])
    assert result['mDice'] == pytest.approx(expected_metrics(volumes, False)[0]['mDice'])


def test_missing_slice_raises(volumes):
    samples = [s for s in make_samples(volumes)
               if not (s['case_id'] == 'case_a' and s['slice_index'] in (1, 3))]
    with pytest.raises(ValueError, match=r"case 'case_a'.*missing slice indices \[1, 3\]"):
        run_metric(VolumeDiceHD95Metric(), samples)


def test_missing_spacing_raises(volumes):
    samples = make_samples(volumes)
    for s in samples:
        s.pop('spacing')
    with pytest.raises(ValueError, match='use_spacing=True but case'):
        run_metric(VolumeDiceHD95Metric(use_spacing=True), samples)
    assert run_metric(VolumeDiceHD95Metric(), samples)['mHD95'] > 0


def test_mmseg_metrics_found_through_child_registry():
    assert METRICS.get('IoUMetric') is not None

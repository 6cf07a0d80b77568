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
    voxels = run_metric(VolumeDiceHD95Metric(use_spacing=False), make_samples(volumes))
    mm = run_metric(VolumeDiceHD95Metric(use_spacing=True), make_samples(volumes))
    assert mm['mDice'] == pytest.approx(voxels['mDice'])
    assert mm['mHD95'] != pytest.approx(voxels['mHD95'])


def test_writes_csv(volumes, tmp_path):
    path = tmp_path / 'per_case.csv'
    run_metric(VolumeDiceHD95Metric(use_spacing=False, output_file=str(path)),
               make_samples(volumes))
    _, scores = expected_metrics(volumes, use_spacing=False)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [(r['case_id'], r['class']) for r in rows] == [
        (case, name) for case in ('case_a', 'case_b') for name in CLASSES[1:]]
    values = np.array([[float(r['dice_percent']), float(r['hd95'])] for r in rows])
    assert {r['hd95_unit'] for r in rows} == {'voxels'}
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


def volume_sample(case_id, pred, gt, spacing=None, leading_one=False):
    """A whole-volume sample as SegDataSample.to_dict() gives it (metainfo is_volume=True)."""
    pred, gt = torch.from_numpy(pred).long(), torch.from_numpy(gt).long()
    if leading_one:
        pred, gt = pred[None], gt[None]
    sample = dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt), case_id=case_id,
                  is_volume=True)
    if spacing is not None:
        sample['spacing'] = list(spacing)
    return sample


def run_volumes(metric, samples, classes=CLASSES):
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_transunet_numbers_unchanged(volumes):
    """In voxels (TransUNet's protocol) the metric still gives the plain mean over cases, bit
    for bit."""
    result = run_metric(VolumeDiceHD95Metric(use_spacing=False), make_samples(volumes))
    expected, _ = expected_metrics(volumes, use_spacing=False)
    assert result == {key: float(value) for key, value in expected.items()}


@pytest.mark.parametrize('convention', ['transunet', 'nnunet'])
@pytest.mark.parametrize('use_spacing', [False, True])
def test_whole_volume_equals_slices(volumes, convention, use_spacing):
    kwargs = dict(convention=convention, use_spacing=use_spacing)
    from_slices = run_metric(VolumeDiceHD95Metric(**kwargs), make_samples(volumes))
    samples = [volume_sample(case_id, pred, gt, SPACINGS[case_id], leading_one=i == 0)
               for i, (case_id, (pred, gt)) in enumerate(volumes.items())]
    from_volumes = run_volumes(VolumeDiceHD95Metric(**kwargs), samples + samples[:1])
    assert from_volumes.keys() == from_slices.keys()
    for key, value in from_slices.items():
        np.testing.assert_equal(from_volumes[key], value, err_msg=key)


def test_whole_volume_through_evaluator(volumes):
    """Real SegDataSamples go through mmengine's Evaluator (which calls to_dict())."""
    from mmengine.evaluator import Evaluator
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    evaluator = Evaluator(dict(type='VolumeDiceHD95Metric', convention='nnunet'))
    evaluator.dataset_meta = dict(classes=CLASSES)
    for case_id, (pred, gt) in volumes.items():
        sample = SegDataSample(metainfo=dict(case_id=case_id, is_volume=True))
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred).long())
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt).long())
        evaluator.process([sample])
    result = evaluator.evaluate(len(volumes))
    # no spacing in these samples: the default ('auto') measures HD95 in voxels
    expected = run_metric(VolumeDiceHD95Metric(convention='nnunet', use_spacing=False),
                          make_samples(volumes))
    assert result == pytest.approx(expected)


def hand_worked_cases():
    """Two cases of classes (bg, A, B, C), Dice worked by hand under both conventions.

    case 1: A pred 4 px, gt 6 px, 2 shared -> 2*2/(4+6) = 0.4; B in neither; C missed (FN).
    case 2: A exact; B predicted but absent from gt (FP only); C exact.
    nnunet:    A (40, 100) -> 70; B (NaN, 0) -> 0; C (0, 100) -> 50; mDice 40.
    transunet: A 70; B (0, 100) -> 50 (empty pred 0, pred without gt 1); C 50; mDice 170/3.
    """
    pred1, gt1 = np.zeros((2, 6, 6), np.uint8), np.zeros((2, 6, 6), np.uint8)
    pred1[0, 0:2, 0:2] = 1
    gt1[0, 1:3, 0:3] = 1
    gt1[1, 4, 4] = 3
    pred2, gt2 = np.zeros((2, 6, 6), np.uint8), np.zeros((2, 6, 6), np.uint8)
    pred2[0, 0:2, 0:2] = gt2[0, 0:2, 0:2] = 1
    pred2[1, 5, 5] = 2
    pred2[1, 3, 3] = gt2[1, 3, 3] = 3
    return [volume_sample('c1', pred1, gt1), volume_sample('c2', pred2, gt2)]


HAND_CLASSES = ('background', 'A', 'B', 'C')


def test_nnunet_two_cases_by_hand():
    result = run_volumes(VolumeDiceHD95Metric(convention='nnunet', hd95=False,
                                              also_log_convention='transunet'),
                         hand_worked_cases(), HAND_CLASSES)
    assert result == pytest.approx({
        'mDice': 40.0, 'Dice.A': 70.0, 'Dice.B': 0.0, 'Dice.C': 50.0,
        'transunet.mDice': 170 / 3, 'transunet.Dice.A': 70.0, 'transunet.Dice.B': 50.0,
        'transunet.Dice.C': 50.0})
    transunet = run_volumes(VolumeDiceHD95Metric(hd95=False), hand_worked_cases(),
                            HAND_CLASSES)
    assert transunet == pytest.approx({'mDice': 170 / 3, 'Dice.A': 70.0, 'Dice.B': 50.0,
                                       'Dice.C': 50.0})


def test_nnunet_hd95_ignores_empty_cases():
    result = run_volumes(VolumeDiceHD95Metric(convention='nnunet'), hand_worked_cases(),
                         HAND_CLASSES)
    # A has HD95 in both cases (0 in case 2: exact); B and C only where both masks exist.
    assert result['HD95.A'] > 0 and result['HD95.C'] == 0.0
    assert np.isnan(result['HD95.B']) and np.isnan(result['mHD95'])


def test_class_absent_everywhere_is_nan_under_nnunet():
    """As nnU-Net's foreground mean: a class never predicted nor annotated makes mDice NaN."""
    classes = HAND_CLASSES + ('D',)
    result = run_volumes(VolumeDiceHD95Metric(convention='nnunet', hd95=False),
                         hand_worked_cases(), classes)
    assert np.isnan(result['Dice.D']) and np.isnan(result['mDice'])
    assert result['Dice.A'] == pytest.approx(70.0)


def test_csv_with_extra_convention(tmp_path):
    path = tmp_path / 'per_case.csv'
    run_volumes(VolumeDiceHD95Metric(convention='nnunet', also_log_convention=['transunet'],
                                     output_file=str(path)), hand_worked_cases(), HAND_CLASSES)
    with open(path) as f:
        rows = {(r['case_id'], r['class']): r for r in csv.DictReader(f)}
    assert rows['c1', 'B']['dice_percent'] == 'nan'
    assert rows['c1', 'B']['dice_percent.transunet'] == '0.0000'
    assert rows['c2', 'B']['dice_percent'] == '0.0000'
    assert rows['c2', 'B']['dice_percent.transunet'] == '100.0000'
    assert float(rows['c1', 'A']['dice_percent']) == pytest.approx(40.0)


def test_bad_volume_samples_raise(volumes):
    pred, gt = volumes['case_a']
    with pytest.raises(ValueError, match=r"case 'case_a'.*shape \(16, 16\)"):
        run_volumes(VolumeDiceHD95Metric(), [volume_sample('case_a', pred[0], gt[0])])
    mixed = [volume_sample('case_a', pred, gt)] + [
        s for s in make_samples(volumes) if s['case_id'] == 'case_a']
    with pytest.raises(ValueError, match='both as a whole volume and as slices'):
        run_volumes(VolumeDiceHD95Metric(), mixed)
    with pytest.raises(ValueError, match="'nnUNet' is not one of"):
        VolumeDiceHD95Metric(convention='nnUNet')

"""Tests of mmsam's NSD against DeepMind's surface-distance package and hand-worked values."""
import math
import types

import numpy as np
import pytest
import surface_distance  # the reference, pinned in requirements/tests.txt
import surface_distance.lookup_tables
import surface_distance.metrics
from scipy import ndimage

from mmsam.evaluation.functional import nsd, per_class_nsd, surface_distances



class _NumpyWithAliases(types.ModuleType):
    """numpy plus ``Inf`` / ``NaN``, which surface-distance 0.1 uses and numpy 2 removed."""

    def __init__(self):
        super().__init__('numpy')
        self.Inf, self.NaN = np.inf, np.nan

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.fixture
def reference(monkeypatch):
    """surface-distance's NSD(pred, gt, spacing, tolerance), its ``np`` patched for this test
    only (it reads ``np.Inf`` whenever one mask is empty)."""
    metrics = surface_distance.metrics
    monkeypatch.setattr(metrics, 'np', _NumpyWithAliases())

    def compute(pred, gt, spacing, tolerance):
        distances = metrics.compute_surface_distances(np.asarray(gt, bool),
                                                      np.asarray(pred, bool), spacing)
        return metrics.compute_surface_dice_at_tolerance(distances, tolerance)
    return compute


def random_pair(rng, ndim):
    """A blobby random mask (touching the array edges at times) and a perturbed copy."""
    shape = tuple(int(n) for n in rng.integers(6, 18, ndim))
    gt = ndimage.binary_opening(rng.random(shape) < 0.55)
    pred = ndimage.binary_dilation(gt) if rng.random() < 0.5 else ndimage.binary_erosion(gt)
    pred ^= rng.random(shape) < 0.08
    return pred, gt


@pytest.mark.parametrize('ndim', [2, 3])
def test_nsd_equals_surface_distance_on_random_masks(reference, ndim):
    rng = np.random.default_rng(ndim)
    compared = []
    for _ in range(25):
        pred, gt = random_pair(rng, ndim)
        spacing = tuple(rng.uniform(0.3, 3.0, ndim))  # anisotropic
        tolerance = float(rng.uniform(0.0, 4.0))
        expected = reference(pred, gt, spacing, tolerance)
        if pred.any() and gt.any():
            assert nsd(pred, gt, spacing, tolerance) == pytest.approx(expected, abs=1e-6)
            compared.append(expected)
    assert len(compared) >= 20
    assert np.ptp(compared) > 0.3  # the cases span a range of scores, not all 1


@pytest.mark.parametrize('ndim', [2, 3])
def test_surface_elements_and_distances_equal_surface_distance(reference, ndim):
    """Per element, not only the ratio: same multiset of (distance, length/area) pairs."""
    rng = np.random.default_rng(10 + ndim)
    pred, gt = random_pair(rng, ndim)
    spacing = tuple(rng.uniform(0.5, 2.5, ndim))
    ours = surface_distances(pred, gt, spacing)
    theirs = surface_distance.metrics.compute_surface_distances(gt, pred, spacing)
    for side in ('gt_to_pred', 'pred_to_gt'):
        owner = side.split('_')[0]
        mine = np.array(sorted(zip(ours[f'distances_{side}'], ours[f'surfel_areas_{owner}'])))
        ref = np.array(sorted(zip(theirs[f'distances_{side}'],
                                  theirs[f'surfel_areas_{owner}'])))
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-9)


def test_empty_mask_convention(reference):
    """Both empty: 1.0 here (the package: 0/0 = NaN); one empty: 0.0 (as the package)."""
    empty = np.zeros((6, 7, 8), bool)
    blob = empty.copy()
    blob[2:4, 3:6, 1:5] = True
    spacing = (2.0, 0.7, 0.9)
    assert nsd(empty, empty, spacing, 1.0) == 1.0
    assert math.isnan(nsd(empty, empty, spacing, 1.0, both_empty=float('nan')))
    with np.errstate(invalid='ignore'):
        assert math.isnan(reference(empty, empty, spacing, 1.0))
    for pred, gt in ((blob, empty), (empty, blob)):
        assert nsd(pred, gt, spacing, 100.0) == 0.0
        assert reference(pred, gt, spacing, 100.0) == 0.0
    assert nsd(empty[0], blob[2], (1.0, 1.0), 5.0) == 0.0


def test_hand_worked_2d_single_pixels():
    """Two single pixels two columns apart: each has 4 corner segments of half a diagonal.

    Surface cells (grid shifted by half a pixel) of gt lie in cell columns 2 and 3, pred's in
    4 and 5 (same rows), so the distances are 1 and 2 column steps each way.
    """
    gt = np.zeros((5, 7), bool)
    gt[2, 2] = True
    pred = np.zeros((5, 7), bool)
    pred[2, 4] = True
    found = surface_distances(pred, gt, (1.0, 0.5))
    np.testing.assert_allclose(found['surfel_areas_gt'], [0.5 * math.hypot(1.0, 0.5)] * 4)
    np.testing.assert_allclose(sorted(found['distances_gt_to_pred']), [0.5, 0.5, 1.0, 1.0])
    assert nsd(pred, gt, (1.0, 0.5), 0.49) == 0.0
    assert nsd(pred, gt, (1.0, 0.5), 0.5) == pytest.approx(0.5)
    assert nsd(pred, gt, (1.0, 0.5), 1.0) == pytest.approx(1.0)
    assert nsd(pred, gt, None, 1.0) == pytest.approx(0.5)  # in pixels: distances 1 and 2


def test_hand_worked_3d_single_voxels_shifted_in_z():
    """Single voxels one slice apart (z spacing 3 mm): 8 corner triangles each, of area
    0.5 |(-1.5, 0.5, 0) x (-1.5, 0, 0.5)| = 0.5 sqrt(1.1875); the 4 cells between them are
    shared (distance 0), the 4 outer ones 3 mm away."""
    gt = np.zeros((5, 4, 4), bool)
    gt[2, 1, 1] = True
    pred = np.zeros_like(gt)
    pred[3, 1, 1] = True
    spacing = (3.0, 1.0, 1.0)
    found = surface_distances(pred, gt, spacing)
    np.testing.assert_allclose(found['surfel_areas_pred'], [0.5 * math.sqrt(1.1875)] * 8)
    np.testing.assert_allclose(sorted(found['distances_pred_to_gt']), [0] * 4 + [3] * 4)
    assert nsd(pred, gt, spacing, 2.9) == pytest.approx(0.5)
    assert nsd(pred, gt, spacing, 3.0) == pytest.approx(1.0)
    assert nsd(gt, gt, spacing, 0.0) == 1.0


def test_per_class_nsd_takes_one_tolerance_per_class():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 3, (4, 9, 9))
    pred = np.where(rng.random(gt.shape) < 0.2, rng.integers(0, 3, gt.shape), gt)
    spacing = (2.0, 1.0, 0.8)
    scores = per_class_nsd(pred, gt, 3, spacing, [0.5, 2.0])
    assert scores.shape == (2,)
    assert scores[0] == nsd(pred == 1, gt == 1, spacing, 0.5)
    assert scores[1] == nsd(pred == 2, gt == 2, spacing, 2.0)
    assert scores[0] != per_class_nsd(pred, gt, 3, spacing, 2.0)[0]


@pytest.mark.parametrize('kwargs, message', [
    (dict(pred=np.zeros((4, 4)), gt=np.zeros((4, 5))), 'shapes differ'),
    (dict(pred=np.zeros(4), gt=np.zeros(4)), '2D'),
    (dict(pred=np.zeros((4, 4)), gt=np.zeros((4, 4)), spacing=(1.0,)), 'spacing'),
    (dict(pred=np.zeros((4, 4)), gt=np.zeros((4, 4)), spacing=(1.0, 0.0)), 'spacing'),
    (dict(pred=np.zeros((4, 4)), gt=np.zeros((4, 4)), tolerance_mm=-1.0), 'tolerance'),
])
def test_bad_input_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nsd(**kwargs)


def test_per_class_tolerance_count_is_checked():
    with pytest.raises(ValueError, match='one per foreground class'):
        per_class_nsd(np.zeros((3, 3)), np.zeros((3, 3)), 3, None, [1.0])


def _reverse_bits(code, width):
    return int(format(code, f'0{width}b')[::-1], 2)


@pytest.mark.parametrize('spacing', [(1.0, 1.0), (2.5, 0.4), (1.0, 1.0, 1.0), (2.5, 0.7, 1.3)])
def test_cell_tables_equal_surface_distance_lookup_tables(spacing):
    """Every cell code's contour length / patch area, against the package's tables (its code
    numbers the corners in the reverse order: bit 2^d - 1 - k is our bit k)."""
    from mmsam.evaluation.functional.nsd import _contour_length_table, _surface_area_table
    tables = surface_distance.lookup_tables
    if len(spacing) == 2:
        ours = _contour_length_table(spacing)
        theirs = tables.create_table_neighbour_code_to_contour_length(spacing)
    else:
        ours = _surface_area_table(spacing)
        theirs = tables.create_table_neighbour_code_to_surface_area(spacing)
    width = 2 ** len(spacing)
    reordered = np.array([theirs[_reverse_bits(code, width)] for code in range(len(ours))])
    np.testing.assert_allclose(ours, reordered, rtol=0, atol=1e-12)
    assert np.count_nonzero(ours) == len(ours) - 2  # only all-out / all-in cells have none


# NSD in VolumeDiceHD95Metric: slices (the 2D path, stacked per case) and whole volumes.
CLASSES = ('background', 'liver', 'kidney')
SPACINGS = {'case_a': (3.0, 0.8, 0.8), 'case_b': (1.5, 1.2, 1.0)}


@pytest.fixture
def label_volumes():
    """case_id -> (pred, gt) uint8 (D, H, W); case_b has no kidney in gt but predicts some."""
    rng = np.random.default_rng(0)
    out = {}
    for case_id, depth in (('case_a', 5), ('case_b', 4)):
        gt = np.zeros((depth, 16, 16), np.uint8)
        gt[:, 2:9, 3:11] = 1
        if case_id == 'case_a':
            gt[1:4, 10:14, 9:15] = 2
        pred = np.roll(gt, 1, axis=2)
        flip = rng.random(gt.shape) < 0.05
        pred[flip] = rng.integers(0, 3, flip.sum())
        out[case_id] = pred, gt
    return out


def slice_samples(label_volumes):
    import torch
    return [dict(pred_sem_seg=dict(data=torch.from_numpy(pred[z][None]).long()),
                 gt_sem_seg=dict(data=torch.from_numpy(gt[z][None]).long()),
                 case_id=case_id, slice_index=z, num_slices=len(gt),
                 spacing=list(SPACINGS[case_id]))
            for case_id, (pred, gt) in label_volumes.items() for z in range(len(gt))]


def volume_samples(label_volumes):
    import torch
    return [dict(pred_sem_seg=dict(data=torch.from_numpy(pred).long()),
                 gt_sem_seg=dict(data=torch.from_numpy(gt).long()),
                 case_id=case_id, is_volume=True, spacing=list(SPACINGS[case_id]))
            for case_id, (pred, gt) in label_volumes.items()]


def evaluate(samples, **kwargs):
    from mmsam.registry import METRICS
    metric = METRICS.build(dict(type='VolumeDiceHD95Metric', **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


@pytest.mark.parametrize('make_samples', [slice_samples, volume_samples])
@pytest.mark.parametrize('convention', ['transunet', 'nnunet'])
def test_metric_nsd_per_class_and_dice_hd95_unchanged(reference, label_volumes, make_samples,
                                                      convention):
    samples = make_samples(label_volumes)
    plain = evaluate(samples, use_spacing=True, convention=convention)
    tolerances = [1.0, 2.5]
    with_nsd = evaluate(samples, use_spacing=True, convention=convention,
                        nsd_tolerance=tolerances)
    assert 'mNSD' not in plain
    assert {k: with_nsd[k] for k in plain} == plain  # Dice / HD95 exactly as without NSD
    assert set(with_nsd) - set(plain) == {'mNSD', 'NSD.liver', 'NSD.kidney'}
    per_case = {name: [] for name in CLASSES[1:]}
    for case_id, (pred, gt) in label_volumes.items():
        for c, name in enumerate(CLASSES[1:], start=1):
            p, g = pred == c, gt == c
            if g.any() and p.any():
                per_case[name].append(reference(p, g, SPACINGS[case_id], tolerances[c - 1]))
            elif g.any() or p.any():
                per_case[name].append(0.0)  # case_b kidney: predicted, absent from gt
    for name, values in per_case.items():
        assert with_nsd[f'NSD.{name}'] == pytest.approx(100 * np.mean(values), abs=1e-6), name
    assert with_nsd['mNSD'] == pytest.approx((with_nsd['NSD.liver'] + with_nsd['NSD.kidney']) / 2)
    assert 0 < with_nsd['NSD.liver'] < 100


def test_metric_nsd_both_empty_by_convention(label_volumes):
    """A class absent from both pred and gt of a case: 100 under 'transunet', left out under
    'nnunet'."""
    samples = volume_samples({'case_a': (label_volumes['case_a'][1],) * 2,
                              'case_b': (np.ones((3, 8, 8), np.uint8),) * 2})
    transunet = evaluate(samples, use_spacing=True, nsd_tolerance=0.0)
    nnunet = evaluate(samples, use_spacing=True, convention='nnunet', nsd_tolerance=0.0)
    assert transunet['NSD.kidney'] == 100.0 and nnunet['NSD.kidney'] == 100.0
    assert transunet['NSD.liver'] == nnunet['NSD.liver'] == 100.0
    samples = volume_samples({'case_b': (np.ones((3, 8, 8), np.uint8),) * 2})
    assert math.isnan(evaluate(samples, use_spacing=True, convention='nnunet',
                               nsd_tolerance=1.0)['NSD.kidney'])
    assert evaluate(samples, use_spacing=True, nsd_tolerance=1.0)['NSD.kidney'] == 100.0


def test_metric_nsd_in_csv_and_table(label_volumes, tmp_path, capsys):
    import csv
    path = tmp_path / 'cases.csv'
    result = evaluate(volume_samples(label_volumes), use_spacing=True, nsd_tolerance=2.0,
                      output_file=str(path))
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ['case_id', 'class', 'dice_percent', 'hd95', 'nsd_percent',
                             'hd95_unit']
    liver = [float(r['nsd_percent']) for r in rows if r['class'] == 'liver']
    assert np.mean(liver) == pytest.approx(result['NSD.liver'], abs=1e-3)


def test_metric_rejects_bad_tolerance(label_volumes):
    with pytest.raises(ValueError, match='tolerance'):
        evaluate(volume_samples(label_volumes), nsd_tolerance=-1.0)
    with pytest.raises(ValueError, match='one per foreground class'):
        evaluate(volume_samples(label_volumes), nsd_tolerance=[1.0, 2.0, 3.0])

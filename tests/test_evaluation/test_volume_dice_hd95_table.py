"""The logged table of VolumeDiceHD95Metric says where HD95 0 means an empty prediction."""
import numpy as np
import pytest
import torch

from mmsam.evaluation import VolumeDiceHD95Metric
from mmsam.evaluation.metrics import volume_dice_hd95_metric

CLASSES = ('background', 'liver', 'kidney', 'pancreas')


def volume_samples():
    """Three cases; kidney is never predicted in case_a and case_b, pancreas never at all."""
    samples = []
    for name, kidney_predicted in (('case_a', False), ('case_b', False), ('case_c', True)):
        gt = np.zeros((4, 16, 16), np.int64)
        gt[:, 2:9, 3:11] = 1
        gt[1:3, 10:14, 9:15] = 2
        gt[2, 12:15, 1:4] = 3
        pred = np.where(gt == 1, 1, 0)
        if kidney_predicted:
            pred[gt == 2] = 2
        samples.append(dict(pred_sem_seg=dict(data=torch.from_numpy(pred)),
                            gt_sem_seg=dict(data=torch.from_numpy(gt)),
                            case_id=name, is_volume=True))
    return samples


def logged_table(monkeypatch, **kwargs):
    logged = []
    monkeypatch.setattr(volume_dice_hd95_metric, 'print_log',
                        lambda msg, **_: logged.append(msg))
    metric = VolumeDiceHD95Metric(**kwargs)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, volume_samples())
    metrics = metric.compute_metrics(metric.results)
    assert len(logged) == 1
    return logged[0], metrics


def rows(text):
    """Table rows as lists of cells (class name first)."""
    return {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip('|').split('|')]
        for line in text.splitlines() if line.startswith('|'))}


def test_transunet_table_counts_empty_predictions_and_explains_the_zeros(monkeypatch):
    text, metrics = logged_table(monkeypatch)
    table = rows(text)
    assert table['Class'] == ['Dice (%) [transunet]', 'HD95 (voxels)', 'empty pred']
    # pancreas: never predicted -> Dice 0 and HD95 0 in every case, the "perfect" HD95.
    assert table['pancreas'] == ['0.00', '0.00', '3/3']
    assert table['kidney'][1:] == ['0.00', '2/3'] and table['liver'][2] == '0/3'
    assert table['mean'][2] == '5/9'
    assert metrics['HD95.pancreas'] == 0.0  # the returned metrics keep the convention
    assert 'TransUNet rule' in text and 'not measured' in text
    assert '5 class-case pair(s) here have an empty prediction' in text


def test_nnunet_note_and_no_column_without_hd95(monkeypatch):
    text, _ = logged_table(monkeypatch, convention='nnunet')
    table = rows(text)
    assert table['pancreas'][1:] == ['nan', '3/3']
    assert 'nnU-Net rule' in text and 'TransUNet rule' not in text

    text, _ = logged_table(monkeypatch, hd95=False)
    assert rows(text)['Class'] == ['Dice (%) [transunet]']
    assert 'empty pred' not in text and 'rule' not in text


def test_extra_convention_columns_stay_after_the_count(monkeypatch):
    text, _ = logged_table(monkeypatch, also_log_convention='nnunet')
    table = rows(text)
    assert table['Class'] == ['Dice (%) [transunet]', 'HD95 (voxels)', 'empty pred',
                              'Dice (%) [nnunet]']
    assert table['pancreas'] == ['0.00', '0.00', '3/3', '0.00']


def test_units_in_mm(monkeypatch):
    logged = []
    monkeypatch.setattr(volume_dice_hd95_metric, 'print_log',
                        lambda msg, **_: logged.append(msg))
    metric = VolumeDiceHD95Metric(use_spacing=True)
    metric.dataset_meta = dict(classes=CLASSES)
    samples = volume_samples()
    for s in samples:
        s['spacing'] = (2.0, 1.0, 1.0)
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    assert 'HD95 (mm)' in logged[0]


def slice_case(spacing):
    """One 3-slice case as slices (the metainfo a converted data root packs), worked by hand.

    Ground truth: one voxel at (z, y, x) = (0, 2, 2); prediction: one voxel at (2, 2, 2), two
    slices away. Each mask is its own surface, so both directed distances are the one
    distance: 2 voxels, or 2 * 2 mm = 4 mm with spacing (2, 1, 1). Dice is 0 either way.
    """
    samples = []
    for k in range(3):
        gt, pred = np.zeros((1, 5, 5), np.int64), np.zeros((1, 5, 5), np.int64)
        gt[0, 2, 2] = k == 0
        pred[0, 2, 2] = k == 2
        sample = dict(pred_sem_seg=dict(data=torch.from_numpy(pred)),
                      gt_sem_seg=dict(data=torch.from_numpy(gt)), case_id='c',
                      slice_index=k, num_slices=3)
        if spacing is not None:
            sample['spacing'] = spacing
        samples.append(sample)
    return samples


@pytest.mark.parametrize('use_spacing, spacing, unit, hd95', [
    ('auto', (2.0, 1.0, 1.0), 'mm', 4.0),  # the default: the spacing is known -> mm
    ('auto', None, 'voxels', 2.0),  # no spacing in the metainfo -> voxels, and why
    (False, (2.0, 1.0, 1.0), 'voxels', 2.0),  # the TransUNet/H-SAM protocol
])
def test_hd95_in_mm_when_every_spacing_is_known(monkeypatch, use_spacing, spacing, unit, hd95):
    logged = []
    monkeypatch.setattr(volume_dice_hd95_metric, 'print_log',
                        lambda msg, **_: logged.append(msg))
    metric = VolumeDiceHD95Metric(use_spacing=use_spacing, convention='nnunet')
    metric.dataset_meta = dict(classes=('background', 'lesion'))
    metric.process({}, slice_case(spacing))
    metrics = metric.compute_metrics(metric.results)
    assert metrics['mHD95'] == pytest.approx(hd95) and metrics['mDice'] == 0.0
    assert rows(logged[0])['Class'][1] == f'HD95 ({unit})'
    assert ('HD95 in voxels: 1 of 1 case(s) have no spacing' in logged[0]) == (spacing is None)


def test_auto_falls_back_to_voxels_if_one_case_lacks_spacing(monkeypatch):
    logged = []
    monkeypatch.setattr(volume_dice_hd95_metric, 'print_log',
                        lambda msg, **_: logged.append(msg))
    metric = VolumeDiceHD95Metric(convention='nnunet')
    metric.dataset_meta = dict(classes=('background', 'lesion'))
    other = slice_case((2.0, 1.0, 1.0))
    for s in other:
        s['case_id'] = 'd'
    metric.process({}, slice_case(None) + other)
    assert metric.compute_metrics(metric.results)['mHD95'] == pytest.approx(2.0)
    assert "HD95 in voxels: 1 of 2 case(s) have no spacing (e.g. 'c': None)" in logged[0]
    with pytest.raises(ValueError, match="use_spacing must be True, False or 'auto'"):
        VolumeDiceHD95Metric(use_spacing='mm')

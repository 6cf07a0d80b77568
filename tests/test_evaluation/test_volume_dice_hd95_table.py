"""The logged table of VolumeDiceHD95Metric says where HD95 0 means an empty prediction."""
import numpy as np
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

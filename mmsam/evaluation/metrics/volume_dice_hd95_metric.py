"""Per-volume Dice and HD95 of slice-wise predictions (the TransUNet/SAMed test protocol)."""
import csv
import io
import os.path as osp
from collections import defaultdict

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from prettytable import PrettyTable

from mmsam.registry import METRICS
from mmsam.utils.io import atomic_savez, atomic_write_text
from ..functional import per_class_dice_hd95


@METRICS.register_module()
class VolumeDiceHD95Metric(BaseMetric):
    """Dice and HD95 per case and class, averaged over cases, then over foreground classes.

    Slices are stored as they come (a distributed sampler may split a case over ranks) and
    stacked into (D, H, W) volumes per ``case_id`` in ``compute_metrics``. Empty masks follow
    the TransUNet/SAMed convention of :func:`mmsam.evaluation.functional.dice_hd95`.

    Units: Dice in percent (0-100); HD95 in voxels, or in the spacing's units (mm) when
    ``use_spacing`` is True.

    Args:
        use_spacing (bool): measure HD95 with each case's ``spacing`` (z, y, x) metainfo
            instead of in voxels, as the papers do. Default False.
        collect_device (str): 'cpu' or 'gpu', where results are gathered across ranks.
        prefix (str | None): prefix of the returned keys.
        output_file (str | None): if set, a CSV with one row per case and class
            (case_id, class, dice_percent, hd95), written atomically.
        output_dir (str | None): if set, each case's predicted volume is saved as
            ``<output_dir>/<case_id>.npz`` with ``pred`` (D, H, W) uint8 class ids
            (``tools/test.py --out DIR`` sets it).
    """

    default_prefix = None

    def __init__(self, use_spacing=False, collect_device='cpu', prefix=None, output_file=None,
                 output_dir=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.use_spacing = use_spacing
        self.output_file = output_file
        self.output_dir = output_dir

    def process(self, data_batch, data_samples):
        """Store each slice's prediction and ground truth as uint8 with its case metainfo.

        Args:
            data_batch: unused.
            data_samples (list[dict]): with ``pred_sem_seg.data`` and ``gt_sem_seg.data``
                (1, H, W) tensors and metainfo ``case_id``, ``slice_index``, ``num_slices``
                and optionally ``spacing``.
        """
        for sample in data_samples:
            for key in ('case_id', 'slice_index', 'num_slices'):
                if key not in sample:
                    raise KeyError(f'VolumeDiceHD95Metric needs metainfo {key!r}; pack it '
                                   f'with PackSegInputs(meta_keys=...) in the test pipeline')
            pred = sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy().astype(np.uint8)
            gt = sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy().astype(np.uint8)
            spacing = sample.get('spacing')
            self.results.append(dict(
                case_id=str(sample['case_id']), slice_index=int(sample['slice_index']),
                num_slices=int(sample['num_slices']),
                spacing=None if spacing is None else tuple(float(s) for s in spacing),
                pred=pred, gt=gt))

    def compute_metrics(self, results):
        """Stack slices into volumes, score each case and class, and average.

        Args:
            results (list[dict]): the slices stored by ``process``, from all ranks.

        Returns:
            dict[str, float]: ``mDice`` (%), ``mHD95``, and ``Dice.<class>``, ``HD95.<class>``
            for each foreground class.
        """
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError('VolumeDiceHD95Metric needs dataset_meta["classes"] (index 0 is '
                             'the background); set metainfo on the test dataset')
        classes = list(self.dataset_meta['classes'])[1:]
        per_case = {}  # case_id -> (num_classes - 1, 2) array of (Dice %, HD95)
        for case_id, slices in sorted(self._group_by_case(results).items()):
            pred = np.stack([s['pred'] for s in slices])
            gt = np.stack([s['gt'] for s in slices])
            scores = per_class_dice_hd95(pred, gt, len(classes) + 1,
                                         self._case_spacing(case_id, slices))
            scores[:, 0] *= 100
            per_case[case_id] = scores
            if self.output_dir:
                atomic_savez(osp.join(self.output_dir, f'{case_id}.npz'), pred=pred)
        mean = np.mean(np.stack(list(per_case.values())), axis=0)
        if self.output_file:
            self._write_csv(per_case, classes)
        self._log_table(mean, classes)
        metrics = {'mDice': float(mean[:, 0].mean()), 'mHD95': float(mean[:, 1].mean())}
        for name, (dice, hd) in zip(classes, mean):
            metrics[f'Dice.{name}'] = float(dice)
            metrics[f'HD95.{name}'] = float(hd)
        return metrics

    @staticmethod
    def _group_by_case(results):
        """Group slices by case, sorted by slice index, checking each case is complete."""
        cases = defaultdict(dict)
        for res in results:
            # A padding sampler may repeat a slice; any copy of it is the same prediction.
            cases[res['case_id']].setdefault(res['slice_index'], res)
        grouped = {}
        for case_id, by_index in cases.items():
            num_slices = {s['num_slices'] for s in by_index.values()}
            if len(num_slices) != 1:
                raise ValueError(f'case {case_id!r}: slices disagree on num_slices '
                                 f'{sorted(num_slices)}')
            expected = set(range(num_slices.pop()))
            missing, extra = sorted(expected - by_index.keys()), sorted(by_index.keys() - expected)
            if missing or extra:
                raise ValueError(f'case {case_id!r} is incomplete: missing slice indices '
                                 f'{missing}, out-of-range indices {extra} (expected '
                                 f'0..{len(expected) - 1}); evaluate every slice of each case')
            grouped[case_id] = [by_index[i] for i in sorted(by_index)]
        if not grouped:
            raise ValueError('VolumeDiceHD95Metric got no slices to evaluate')
        return grouped

    def _case_spacing(self, case_id, slices):
        if not self.use_spacing:
            return None
        spacing = slices[0]['spacing']
        if spacing is None or len(spacing) != 3:
            raise ValueError(f'use_spacing=True but case {case_id!r} has spacing {spacing}; '
                             f'give 3 floats (z, y, x) in its metainfo or set use_spacing=False')
        return spacing

    def _write_csv(self, per_case, classes):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator='\n')
        writer.writerow(['case_id', 'class', 'dice_percent', 'hd95'])
        for case_id, scores in per_case.items():
            for name, (dice, hd) in zip(classes, scores):
                writer.writerow([case_id, name, f'{dice:.4f}', f'{hd:.4f}'])
        atomic_write_text(self.output_file, buffer.getvalue())

    def _log_table(self, mean, classes):
        unit = 'mm' if self.use_spacing else 'voxels'
        table = PrettyTable(['Class', 'Dice (%)', f'HD95 ({unit})'])
        for name, (dice, hd) in zip(classes, mean):
            table.add_row([name, f'{dice:.2f}', f'{hd:.2f}'])
        table.add_row(['mean', f'{mean[:, 0].mean():.2f}', f'{mean[:, 1].mean():.2f}'])
        print_log('Per-class volume Dice / HD95 (mean over cases):\n' + table.get_string(),
                  logger='current')

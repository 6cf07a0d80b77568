"""Per-volume Dice and HD95 of slice-wise or whole-volume predictions (TransUNet or nnU-Net)."""
import csv
import io
import os.path as osp
import warnings
from collections import defaultdict

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from prettytable import PrettyTable

from mmsam.registry import METRICS
from mmsam.utils.io import atomic_savez, atomic_write_text
from ..functional import CONVENTIONS, class_tolerances, per_class_dice_hd95, per_class_nsd


def _nanmean(values, axis=None):
    """Mean ignoring NaN; NaN (without a warning) where every value is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _to_volume(data, key, case_id):
    """(D, H, W) uint8 array from a (D, H, W) or (1, D, H, W) label tensor."""
    array = data.cpu().numpy()
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f'case {case_id!r}: whole-volume sample (is_volume=True) has {key} of '
                         f'shape {tuple(data.shape)}; expected (D, H, W) or (1, D, H, W)')
    return array.astype(np.uint8)


@METRICS.register_module()
class VolumeDiceHD95Metric(BaseMetric):
    """Dice and HD95 per case and class, averaged over cases, then over foreground classes.

    Two kinds of samples are accepted, even mixed (but not for one case):

    - slices (metainfo ``case_id``, ``slice_index``, ``num_slices``; data (1, H, W)): stored
      as they come (a distributed sampler may split a case over ranks) and stacked into
      (D, H, W) volumes per ``case_id`` in ``compute_metrics``;
    - whole volumes (metainfo ``is_volume=True`` and ``case_id``; data (D, H, W) or
      (1, D, H, W)): each is one complete case.

    Empty masks follow ``convention`` (:func:`mmsam.evaluation.functional.dice_hd95`):
    'transunet' (TransUNet/SAMed: empty prediction (0, 0), prediction without gt (1, 0)) or
    'nnunet' (nnU-Net v2: NaN when the class is absent from both, HD95 NaN when either mask
    is empty). Class means are the NaN-ignoring mean over cases (there are no NaNs under
    'transunet'); ``mDice`` / ``mHD95`` are the plain mean of the class means, as nnU-Net's
    foreground mean, so they are NaN only if some class has no score in any case.

    Units: Dice in percent (0-100); HD95 in mm (the spacing's unit) when it is measured with
    each case's spacing, else in voxels (see ``use_spacing``). The table header says which
    (``HD95 (mm)`` / ``HD95 (voxels)``); the returned keys are the same either way.

    The logged table has, next to HD95, each class's count of cases with an empty prediction
    ("empty pred", k/N) and a note under it on how those are scored, since the TransUNet
    rule's HD95 0 for them would otherwise read as a perfect score.

    Args:
        use_spacing (bool | str): ``'auto'`` (default): HD95 in mm when every case has a
            ``spacing`` (z, y, x) metainfo (the spacing of the grid the labels are on), else in
            voxels; True: always in mm (a case without spacing is an error); False: always in
            voxels, as TransUNet, SAMed and H-SAM report it (their configs set it).
        convention (str): 'transunet' (default) or 'nnunet'.
        hd95 (bool): compute HD95; False (fast) drops the ``mHD95`` / ``HD95.*`` keys.
        also_log_convention (str | list[str] | None): further conventions whose Dice is
            returned (and logged) beside the main one as ``<convention>.mDice`` and
            ``<convention>.Dice.<class>``, e.g. 'transunet' next to 'nnunet'.
        collect_device (str): 'cpu' or 'gpu', where results are gathered across ranks.
        prefix (str | None): prefix of the returned keys.
        output_file (str | None): if set, a CSV with one row per case and class
            (case_id, class, dice_percent, hd95, then ``dice_percent.<convention>`` for each
            extra convention, then ``hd95_unit``: mm or voxels), written atomically. NaN is
            written as ``nan``.
        nsd_tolerance (float | list[float] | None): if set, the normalised surface Dice
            (:func:`mmsam.evaluation.functional.nsd`, DeepMind's definition) at this
            tolerance, one number or one per foreground class, in the unit HD95 is measured
            in (mm with spacing, else voxels), returned in percent as ``mNSD`` and
            ``NSD.<class>``. Empty masks: one empty scores 0; both empty score 100 under
            'transunet' and NaN (left out, as Dice) under 'nnunet'. None (default) adds
            nothing, so the Dice/HD95 keys, table and CSV are as without it.
        output_dir (str | None): if set, each case's predicted volume is saved as
            ``<output_dir>/<case_id>.npz`` with ``pred`` (D, H, W) uint8 class ids
            (``tools/test.py --out DIR`` sets it).
    """

    default_prefix = None

    def __init__(self, use_spacing='auto', convention='transunet', hd95=True,
                 also_log_convention=None, collect_device='cpu', prefix=None, output_file=None,
                 output_dir=None, nsd_tolerance=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        extra = also_log_convention or []
        extra = [extra] if isinstance(extra, str) else list(extra)
        for name in [convention] + extra:
            if name not in CONVENTIONS:
                raise ValueError(f'VolumeDiceHD95Metric: convention {name!r} is not one of '
                                 f'{CONVENTIONS} (check convention / also_log_convention)')
        if use_spacing not in (True, False, 'auto'):
            raise ValueError(f'VolumeDiceHD95Metric: use_spacing must be True, False or '
                             f"'auto', got {use_spacing!r}")
        self.use_spacing = use_spacing
        self.hd95_unit = None  # 'mm' or 'voxels', set by compute_metrics
        self.unit_note = None  # why HD95 is in voxels under 'auto', set by compute_metrics
        self.convention = convention
        self.hd95 = hd95
        self.extra_conventions = [c for c in dict.fromkeys(extra) if c != convention]
        self.output_file = output_file
        self.output_dir = output_dir
        if nsd_tolerance is not None:
            class_tolerances(nsd_tolerance, len(np.atleast_1d(nsd_tolerance)))  # validate
        self.nsd_tolerance = nsd_tolerance

    def process(self, data_batch, data_samples):
        """Store each slice's or volume's prediction and ground truth as uint8 with metainfo.

        Args:
            data_batch: unused.
            data_samples (list[dict]): with ``pred_sem_seg.data`` and ``gt_sem_seg.data``,
                (1, H, W) tensors and metainfo ``case_id``, ``slice_index``, ``num_slices``
                for slices, or (D, H, W) / (1, D, H, W) tensors and metainfo ``case_id``,
                ``is_volume=True`` for whole volumes; optionally ``spacing`` (volumes:
                ``native_spacing`` first, the grid they are scored on).
        """
        for sample in data_samples:
            is_volume = bool(sample.get('is_volume', False))
            keys = ('case_id',) if is_volume else ('case_id', 'slice_index', 'num_slices')
            for key in keys:
                if key not in sample:
                    raise KeyError(f'VolumeDiceHD95Metric needs metainfo {key!r}; pack it '
                                   f'with PackSegInputs(meta_keys=...) in the test pipeline')
            case_id = str(sample['case_id'])
            spacing = sample.get('spacing')
            if is_volume and sample.get('native_spacing') is not None:
                # whole volumes are scored on the case's native grid (VolumeSAMSegmentor
                # resamples its prediction to native_shape; LoadVolume(native_label=True))
                spacing = sample['native_spacing']
            result = dict(case_id=case_id, is_volume=is_volume,
                          spacing=None if spacing is None else tuple(float(s) for s in spacing))
            if is_volume:
                result['pred'] = _to_volume(sample['pred_sem_seg']['data'], 'pred_sem_seg',
                                            case_id)
                result['gt'] = _to_volume(sample['gt_sem_seg']['data'], 'gt_sem_seg', case_id)
            else:
                result.update(
                    slice_index=int(sample['slice_index']), num_slices=int(sample['num_slices']),
                    pred=sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy().astype(np.uint8),
                    gt=sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy().astype(np.uint8))
            self.results.append(result)

    def compute_metrics(self, results):
        """Assemble volumes, score each case and class, and average.

        Args:
            results (list[dict]): the slices and volumes stored by ``process``, all ranks.

        Returns:
            dict[str, float]: ``mDice`` (%) and ``Dice.<class>`` for each foreground class;
            ``mHD95`` and ``HD95.<class>`` when ``hd95``; ``<conv>.mDice`` and
            ``<conv>.Dice.<class>`` for each extra convention.
        """
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError('VolumeDiceHD95Metric needs dataset_meta["classes"] (index 0 is '
                             'the background); set metainfo on the test dataset')
        classes = list(self.dataset_meta['classes'])[1:]
        num_classes = len(classes) + 1
        # case_id -> (num_classes - 1, 2 + len(extra)): Dice %, HD95, extra conventions' Dice %
        per_case = {}
        # Per class, the cases whose prediction of it is empty (HD95 0 under 'transunet').
        empty_pred = np.zeros(num_classes - 1, np.int64)
        cases = self._assemble_cases(results)
        spacings = self._case_spacings({c: spacing for c, (_, _, spacing) in cases.items()})
        for case_id, (pred, gt, _) in sorted(cases.items()):
            spacing = spacings[case_id]
            predicted = np.bincount(pred.reshape(-1), minlength=num_classes)[1:num_classes]
            empty_pred += predicted == 0
            scores = per_class_dice_hd95(pred, gt, num_classes, spacing, self.convention,
                                         self.hd95)
            extra = [per_class_dice_hd95(pred, gt, num_classes, spacing, conv, False)[:, :1]
                     for conv in self.extra_conventions]
            if self.nsd_tolerance is not None:
                extra.append(per_class_nsd(
                    pred, gt, num_classes, spacing, self.nsd_tolerance,
                    both_empty=1.0 if self.convention == 'transunet' else np.nan)[:, None])
            scores = np.concatenate([scores] + extra, axis=1)
            scores[:, [0] + list(range(2, scores.shape[1]))] *= 100
            per_case[case_id] = scores
            if self.output_dir:
                atomic_savez(osp.join(self.output_dir, f'{case_id}.npz'), pred=pred)
        mean = _nanmean(np.stack(list(per_case.values())), axis=0)  # (classes, columns)
        if self.output_file:
            self._write_csv(per_case, classes)
        self._log_table(mean, classes, empty_pred, len(per_case))
        metrics = {'mDice': float(mean[:, 0].mean())}
        metrics.update({f'Dice.{name}': float(v) for name, v in zip(classes, mean[:, 0])})
        if self.hd95:
            metrics['mHD95'] = float(mean[:, 1].mean())
            metrics.update({f'HD95.{name}': float(v) for name, v in zip(classes, mean[:, 1])})
        for column, conv in enumerate(self.extra_conventions, start=2):
            metrics[f'{conv}.mDice'] = float(mean[:, column].mean())
            metrics.update({f'{conv}.Dice.{name}': float(v)
                            for name, v in zip(classes, mean[:, column])})
        if self.nsd_tolerance is not None:
            metrics['mNSD'] = float(mean[:, -1].mean())
            metrics.update({f'NSD.{name}': float(v) for name, v in zip(classes, mean[:, -1])})
        return metrics

    def _assemble_cases(self, results):
        """case_id -> (pred (D, H, W), gt (D, H, W), spacing or None) from slices and volumes."""
        volumes, slices = {}, []
        for res in results:
            if res['is_volume']:
                # A padding sampler may repeat a case; any copy is the same prediction.
                volumes.setdefault(res['case_id'], res)
            else:
                slices.append(res)
        cases = {case_id: (res['pred'], res['gt'], res['spacing'])
                 for case_id, res in volumes.items()}
        for case_id, group in self._group_by_case(slices).items():
            if case_id in cases:
                raise ValueError(f'case {case_id!r} came both as a whole volume and as slices; '
                                 f'feed each case one way')
            cases[case_id] = (np.stack([s['pred'] for s in group]),
                              np.stack([s['gt'] for s in group]), group[0]['spacing'])
        if not cases:
            raise ValueError('VolumeDiceHD95Metric got no slices or volumes to evaluate')
        return cases

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
        return grouped

    def _case_spacings(self, spacings):
        """case_id -> the spacing HD95 is measured with (None: in voxels); sets ``hd95_unit``.

        Args:
            spacings (dict): case_id -> the (z, y, x) spacing of its metainfo, or None.
        """
        unknown = {c: s for c, s in spacings.items()
                   if s is None or len(s) != 3 or not all(np.isfinite(v) and v > 0 for v in s)}
        if self.use_spacing is True and unknown:
            case_id, spacing = sorted(unknown.items())[0]
            raise ValueError(f'use_spacing=True but case {case_id!r} has spacing {spacing}; '
                             "give 3 positive floats (z, y, x) in its metainfo (PackSegInputs' "
                             "meta_keys must hold 'spacing') or set use_spacing='auto' or False")
        self.unit_note = None
        if self.use_spacing is False or unknown:
            self.hd95_unit = 'voxels'
            if unknown:
                case_id, spacing = sorted(unknown.items())[0]
                self.unit_note = (f'HD95 in voxels: {len(unknown)} of {len(spacings)} case(s) '
                                  f'have no spacing (e.g. {case_id!r}: {spacing}); pack '
                                  "'spacing' (z, y, x mm) in the test pipeline's meta_keys to "
                                  'measure it in mm.')
            return {c: None for c in spacings}
        self.hd95_unit = 'mm'
        return dict(spacings)

    def _write_csv(self, per_case, classes):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator='\n')
        writer.writerow(['case_id', 'class', 'dice_percent', 'hd95']
                        + [f'dice_percent.{conv}' for conv in self.extra_conventions]
                        + (['nsd_percent'] if self.nsd_tolerance is not None else [])
                        + ['hd95_unit'])
        for case_id, scores in per_case.items():
            for name, row in zip(classes, scores):
                writer.writerow([case_id, name] + [f'{v:.4f}' for v in row] + [self.hd95_unit])
        atomic_write_text(self.output_file, buffer.getvalue())

    def _log_table(self, mean, classes, empty_pred, num_cases):
        """Log the class means; with HD95, each class's count of empty predictions and a note
        on how they are scored, so that a low HD95 is not read as a good one."""
        unit = self.hd95_unit
        header = ['Class', f'Dice (%) [{self.convention}]']
        columns = [0]
        if self.hd95:
            header += [f'HD95 ({unit})', 'empty pred']
            columns.append(1)
        for column, conv in enumerate(self.extra_conventions, start=2):
            header.append(f'Dice (%) [{conv}]')
            columns.append(column)
        if self.nsd_tolerance is not None:
            header.append(f'NSD (%) @{self._tolerance_text()} {unit}')
            columns.append(mean.shape[1] - 1)
        table = PrettyTable(header)
        for name, row, empty in zip(classes, mean, empty_pred):
            cells = [f'{row[c]:.2f}' for c in columns]
            if self.hd95:
                cells.insert(2, f'{empty}/{num_cases}')
            table.add_row([name] + cells)
        cells = [f'{mean[:, c].mean():.2f}' for c in columns]
        if self.hd95:
            cells.insert(2, f'{int(empty_pred.sum())}/{num_cases * len(classes)}')
        table.add_row(['mean'] + cells)
        text = 'Per-class volume Dice / HD95 (mean over cases):\n' + table.get_string()
        if self.hd95:
            text += '\n' + self._hd95_note(int(empty_pred.sum()))
            if self.unit_note:
                text += '\n' + self.unit_note
        print_log(text, logger='current')

    def _tolerance_text(self):
        values = np.atleast_1d(self.nsd_tolerance)
        return '/'.join(f'{v:g}' for v in values)

    def _hd95_note(self, num_empty):
        """The line under the table saying how empty masks enter the HD95 column."""
        what = '"empty pred": cases (of all) in which the class was not predicted at all.'
        if self.convention == 'transunet':
            note = ('HD95 under the TransUNet rule: where the prediction of a class is empty '
                    'the case scores Dice 0 and HD95 0 (where only the ground truth is '
                    'empty, Dice 1 and HD95 0); these zeros are averaged in, so a low HD95 '
                    'next to empty predictions means "not measured", not "close".')
            if num_empty:
                note += (f' {num_empty} class-case pair(s) here have an empty prediction, '
                         'scored HD95 0.')
        else:
            note = ('HD95 under the nnU-Net rule: NaN (left out of the mean) when the '
                    'prediction or the ground truth of a class is empty; a class with no '
                    'measured case shows nan.')
        return f'{what}\n{note}'

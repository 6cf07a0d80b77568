"""DSC and NSD after each step of the CVPR25 interactive protocol, and their click-curve AUC."""
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from prettytable import PrettyTable

from mmsam.registry import METRICS
from ..functional.click_auc import click_curve_auc
from ..functional.ged import dice
from ..functional.nsd import nsd

CLICK_SOURCES = ('error', 'suggestion', 'error_fallback')


def _array(value):
    if isinstance(value, dict):
        value = value['data']
    elif hasattr(value, 'data') and not hasattr(value, 'shape'):
        value = value.data
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _field(sample, key, where):
    if hasattr(sample, 'to_dict'):
        sample = sample.to_dict()
    if key not in sample:
        raise KeyError(f'InteractiveProtocolMetric needs {key!r} in every data sample ({where} '
                       f'has {sorted(sample)}): run the model with '
                       "model.test_cfg.interactive=dict(num_clicks=5, user='error') "
                       '(MultiHypothesisSegmentor) and pack gt_sem_seg in the test pipeline')
    return sample[key]


@METRICS.register_module()
class InteractiveProtocolMetric(BaseMetric):
    """Scores the masks that ``MultiHypothesisSegmentor``'s interactive protocol stored.

    Per image, against the target (``interactive_target``, the label the protocol clicked
    from, else ``gt_sem_seg``; != 0 is foreground, ``ignore_index`` left out of both
    masks) and for each step s = 0 (the box) .. N (the N-th click) of ``interactive_steps``:
    the Dice and the NSD (:func:`mmsam.evaluation.functional.nsd` at ``nsd_tolerance``, in
    the units of the sample's ``spacing`` or in pixels). As the challenge's script does, the
    NSD of a step whose Dice is at most ``nsd_dice_gate`` (0.2) counts as 0. An empty target
    predicted empty scores ``empty_score`` (1.0) in both. Then, per image:

    - ``DSC_AUC`` / ``NSD_AUC``: the CVPR 2025 challenge's area, the trapezoid over the click
      steps 1..N with unit spacing, not normalised (N = 5: in [0, 4]);
    - ``DSC_AUC_norm`` / ``NSD_AUC_norm``: the trapezoid over all steps 0..N divided by N,
      the mean height of the whole curve, in [0, 1];
    - ``DSC_final`` / ``NSD_final``: step N.

    Returned: the means over images of those, ``DSC_step<s>`` / ``NSD_step<s>`` per step, and
    ``clicks_<source>``: the mean number of clicks per image by source ('error',
    'suggestion', 'error_fallback'), and ``clicks_on_error``: the share of all clicks made
    that fall on an error of the previous step's mask (1 for the error user; for the
    suggestion user, how often the suggestion finds a mistake). Scores are fractions in
    [0, 1] as in the challenge.

    Args:
        nsd_tolerance (float): NSD tolerance in spacing units (the challenge: 2 mm).
        use_spacing (bool): read ``spacing`` from the metainfo (its last two values, (y, x));
            False or absent: pixels.
        nsd_dice_gate (float): NSD is 0 at steps whose Dice is not above it; 0 disables.
        empty_score (float): Dice and NSD of an empty prediction of an empty target.
        ignore_index (int): label value left out.
        collect_device (str), prefix (str | None): see ``BaseMetric``.
    """

    default_prefix = None

    def __init__(self, nsd_tolerance=2.0, use_spacing=True, nsd_dice_gate=0.2,
                 empty_score=1.0, ignore_index=255, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not (np.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
            raise ValueError(f'InteractiveProtocolMetric: nsd_tolerance must be >= 0, got '
                             f'{nsd_tolerance!r}')
        self.nsd_tolerance, self.use_spacing = float(nsd_tolerance), use_spacing
        self.nsd_dice_gate, self.empty_score = float(nsd_dice_gate), float(empty_score)
        self.ignore_index = ignore_index

    def _spacing(self, sample):
        if hasattr(sample, 'to_dict'):
            sample = sample.to_dict()
        spacing = sample.get('spacing') if self.use_spacing else None
        return None if spacing is None else tuple(float(s) for s in spacing)[-2:]

    def score_steps(self, steps, label, spacing=None):
        """Dice and NSD of each step: two (S,) arrays.

        Args:
            steps (ndarray): (S, H, W) binary masks.
            label (ndarray): (H, W) label map (0 background, ``ignore_index`` left out).
            spacing (tuple | None): (y, x) pixel size.
        """
        valid = label != self.ignore_index
        target = (label != 0) & valid
        dsc, nsds = [], []
        for mask in steps:
            mask = (mask != 0) & valid
            d = dice(mask, target, self.empty_score)
            gated = d <= self.nsd_dice_gate and target.any()
            dsc.append(d)
            nsds.append(0.0 if gated else nsd(mask, target, spacing, self.nsd_tolerance,
                                              self.empty_score))
        return np.asarray(dsc), np.asarray(nsds)

    def process(self, data_batch, data_samples):
        """Score each sample's steps (see the class docstring)."""
        for sample in data_samples:
            if hasattr(sample, 'to_dict'):
                sample = sample.to_dict()
            where = sample.get('img_path') or 'a sample'
            steps = _array(_field(sample, 'interactive_steps', where))
            label = _array(_field(sample, 'interactive_target' if 'interactive_target' in
                                  sample else 'gt_sem_seg', where))
            label = label[0] if label.ndim == 3 else label
            if steps.ndim != 3 or steps.shape[1:] != label.shape:
                raise ValueError(f'InteractiveProtocolMetric: {where}: interactive_steps '
                                 f'{steps.shape} must be (S, H, W) with the label\'s '
                                 f'{label.shape}')
            dsc, nsds = self.score_steps(steps, label, self._spacing(sample))
            clicks = _field(sample, 'interactive_clicks', where)
            sources = [c.get('source') for c in clicks[1:]]
            self.results.append(dict(dsc=dsc, nsd=nsds, on_error=self._on_error(
                steps, label, clicks), **{f'clicks_{s}': sources.count(s) for s in CLICK_SOURCES}))

    def _on_error(self, steps, label, clicks):
        """(made, on an error of the previous step's mask) counts of the clicks."""
        target = (label != 0) & (label != self.ignore_index)
        made = wrong = 0
        for step, click in enumerate(clicks[1:], start=1):
            if click.get('point') is None:
                continue
            x, y = (int(round(v)) for v in click['point'][:2])
            made += 1
            wrong += int((steps[step - 1][y, x] != 0) != target[y, x])
        return made, wrong

    def compute_metrics(self, results):
        """Average the per-image scores; log a per-step table.

        Returns:
            dict[str, float]: see the class docstring.
        """
        lengths = {len(r['dsc']) for r in results}
        if len(lengths) != 1:
            raise ValueError(f'InteractiveProtocolMetric: images have different numbers of '
                             f'steps {sorted(lengths)}; run every image with one num_clicks')
        metrics = {}
        for name, key in (('DSC', 'dsc'), ('NSD', 'nsd')):
            curves = np.stack([r[key] for r in results])
            for step, value in enumerate(curves.mean(0)):
                metrics[f'{name}_step{step}'] = float(value)
            metrics[f'{name}_AUC'] = float(np.mean([click_curve_auc(c) for c in curves]))
            metrics[f'{name}_AUC_norm'] = float(np.mean([
                click_curve_auc(c, clicks_only=False, normalise=True) for c in curves]))
            metrics[f'{name}_final'] = float(curves[:, -1].mean())
        for source in CLICK_SOURCES:
            metrics[f'clicks_{source}'] = float(np.mean([r[f'clicks_{source}'] for r in results]))
        made, wrong = np.sum([r['on_error'] for r in results], axis=0)
        metrics['clicks_on_error'] = float(wrong / made) if made else float('nan')
        self._log_table(metrics, lengths.pop(), len(results))
        return metrics

    def _log_table(self, metrics, num_steps, num_images):
        table = PrettyTable()
        table.field_names = ['step'] + [str(s) for s in range(num_steps)]
        for name in ('DSC', 'NSD'):
            table.add_row([name] + [f'{metrics[f"{name}_step{s}"]:.4f}'
                                    for s in range(num_steps)])
        summary = ', '.join(f'{k} {metrics[k]:.4f}' for k in (
            'DSC_AUC', 'NSD_AUC', 'DSC_AUC_norm', 'NSD_AUC_norm', 'DSC_final', 'NSD_final'))
        print_log(f'Interactive protocol over {num_images} images (step 0: the box; NSD at '
                  f'{self.nsd_tolerance:g}):\n{table.get_string()}\n{summary}', logger='current')

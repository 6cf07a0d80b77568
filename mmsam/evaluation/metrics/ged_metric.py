"""Per-image set metrics of multi-hypothesis segmentation: GED, D_avg, D_max, diversity."""
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from prettytable import PrettyTable

from mmsam.registry import METRICS
from ..functional.ged import (d_avg, d_max, d_max_per_annotation, diversity,
                              generalized_energy_distance, majority_vote)
from ..functional.nsd import nsd

# Where each field comes from, for the error when a sample lacks it.
_SOURCES = {
    'pred_hypotheses': 'a multi-hypothesis segmentor (MultiHypothesisSegmentor with a head '
                       'such as SeqSAMHead or SAMMCLHead) writes it in predict()',
    'gt_annotations': 'the test pipeline packs every annotator\'s mask into it (load the '
                      'multi-annotator labels, e.g. from the LIDC/QUBIQ datasets, and pack '
                      'them with the inputs)',
}
DIVERSITY_PAIRS = ('all', 'distinct')
# Reported in percent; the rest as fractions.
PERCENT_KEYS = ('D_avg', 'D_max', 'D_max_per_annotation')
KEYS = ('GED', 'D_avg', 'D_max', 'D_max_per_annotation', 'diversity')


def _to_numpy(value):
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _read_masks(sample, field):
    """The (N, H, W) ``<field>.data`` masks of a data sample (a dict or a data element)."""
    if hasattr(sample, 'to_dict'):
        sample = sample.to_dict()
    pixel_data = sample.get(field)
    if pixel_data is None:
        raise KeyError(f'GEDMetric needs {field!r} (PixelData with .data of shape (N, H, W)) in '
                       f'every data sample, but this sample has only {sorted(sample)}; '
                       f'{_SOURCES[field]}')
    data = pixel_data['data'] if isinstance(pixel_data, dict) else pixel_data.data
    masks = _to_numpy(data)
    if masks.ndim != 3:
        raise ValueError(f'GEDMetric: {field}.data must be (N, H, W) binary masks, got shape '
                         f'{masks.shape}')
    return masks


@METRICS.register_module()
class GEDMetric(BaseMetric):
    """GED, majority-vote Dice, best-match Dice and diversity per image, averaged over images.

    Per image (see :mod:`mmsam.evaluation.functional.ged` for the exact definitions):

    - ``GED``: SeqSAM eq. 2, d = 1 - IoU, self-pairs included;
    - ``D_avg``: Dice of the hypotheses' majority vote with each annotation, averaged over
      annotations (SeqSAM's Table 1);
    - ``D_max``: the official SeqSAM code's ``dice_max``: for each hypothesis the Dice of its
      best annotation, averaged over hypotheses;
    - ``D_max_per_annotation``: for each annotation its best hypothesis' Dice, averaged over
      annotations (the multiple-choice "oracle" read);
    - ``diversity``: mean 1 - IoU between hypotheses, over all M² ordered pairs with the self
      pairs (``diversity_pairs='all'``, the official code's ``sample_diversity``, GED's third
      term) or over the M(M-1) distinct pairs (``'distinct'``).

    - ``NSD_avg`` (with ``nsd_tolerance``): the normalised surface Dice
      (:func:`mmsam.evaluation.functional.nsd`, DeepMind's definition) of the majority vote
      with each annotation at that tolerance, averaged over annotations (D_avg's pairing); in
      the units of the sample's ``spacing`` metainfo (its last two values, (y, x)) when there
      is one, else pixels; a vote and an annotation both empty score ``empty_dice``.

    Only these numbers are kept per image, not the masks. Units: the Dice scores (and NSD_avg)
    in percent (0-100), as in SeqSAM's Table 1; ``GED`` and ``diversity`` as fractions.

    Args:
        empty_dice (float): Dice of an empty mask against an empty annotation. Default 0, the
            convention behind SeqSAM's Table 1; 1 counts it as perfect agreement.
        diversity_pairs (str): ``'all'`` or ``'distinct'`` (see above).
        collect_device (str): 'cpu' or 'gpu', where results are gathered across ranks.
        prefix (str | None): prefix of the returned keys.
        nsd_tolerance (float | None): if set, also ``NSD_avg`` at this tolerance (spacing units,
            or pixels); the CVPR challenges use 2 mm.
    """

    default_prefix = None

    def __init__(self, empty_dice=0.0, diversity_pairs='all', collect_device='cpu', prefix=None,
                 nsd_tolerance=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if nsd_tolerance is not None and not (np.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
            raise ValueError(f'GEDMetric: nsd_tolerance must be a number >= 0 or None, got '
                             f'{nsd_tolerance!r}')
        self.nsd_tolerance = nsd_tolerance
        if diversity_pairs not in DIVERSITY_PAIRS:
            raise ValueError(f'GEDMetric: diversity_pairs must be one of {DIVERSITY_PAIRS}, got '
                             f'{diversity_pairs!r}')
        self.empty_dice, self.diversity_pairs = float(empty_dice), diversity_pairs

    def process(self, data_batch, data_samples):
        """Score each sample's hypotheses against its annotations.

        Args:
            data_batch: unused.
            data_samples (list[dict]): with ``pred_hypotheses.data`` (M, H, W) and
                ``gt_annotations.data`` (K, H, W) binary masks (bool or 0/1 integers).
        """
        for sample in data_samples:
            preds = _read_masks(sample, 'pred_hypotheses')
            gts = _read_masks(sample, 'gt_annotations')
            if preds.shape[1:] != gts.shape[1:]:
                raise ValueError(f'GEDMetric: pred_hypotheses masks are {preds.shape[1:]} but '
                                 f'gt_annotations masks are {gts.shape[1:]}; predictions must '
                                 f'be resized to the annotations\' size')
            self.results.append(dict(
                GED=generalized_energy_distance(gts, preds),
                D_avg=d_avg(gts, preds, self.empty_dice),
                D_max=d_max(gts, preds, self.empty_dice),
                D_max_per_annotation=d_max_per_annotation(gts, preds, self.empty_dice),
                diversity=diversity(preds, self_pairs=self.diversity_pairs == 'all')))
            if self.nsd_tolerance is not None:
                self.results[-1]['NSD_avg'] = self._nsd_avg(sample, preds, gts)

    def _nsd_avg(self, sample, preds, gts):
        """NSD of the hypotheses' majority vote with each annotation, averaged (fraction)."""
        meta = sample.to_dict() if hasattr(sample, 'to_dict') else sample
        spacing = meta.get('spacing')
        spacing = None if spacing is None else tuple(float(v) for v in spacing)[-2:]
        vote = majority_vote(preds)
        return float(np.mean([nsd(vote, gt, spacing, float(self.nsd_tolerance),
                                  both_empty=self.empty_dice) for gt in gts]))

    def compute_metrics(self, results):
        """Average the per-image scores and log them as a table.

        Args:
            results (list[dict]): per-image ``GED``, ``D_avg``, ``D_max``,
                ``D_max_per_annotation``, ``diversity``.

        Returns:
            dict[str, float]: the means; the Dice scores in percent.
        """
        keys = KEYS + (('NSD_avg', ) if self.nsd_tolerance is not None else ())
        metrics = {key: float(np.mean([r[key] for r in results])) for key in keys}
        percent = PERCENT_KEYS + ('NSD_avg', )
        for key in keys:
            if key in percent:
                metrics[key] *= 100
        table = PrettyTable()
        table.field_names = ['images'] + [f'{k} (%)' if k in percent else k for k in keys]
        table.add_row([len(results)] + [f'{metrics[k]:.2f}' if k in percent else
                                        f'{metrics[k]:.4f}' for k in keys])
        print_log('\n' + table.get_string(), logger='current')
        return metrics

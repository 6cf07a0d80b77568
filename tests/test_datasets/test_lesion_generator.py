import itertools
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from mmsam.datasets.synthetic import lesion_generator as lg
from mmsam.datasets.synthetic.lesion_generator import (ensure_synthetic_lesions,
                                                       generate_lesion_sample,
                                                       generate_synthetic_lesions)

SMALL = dict(num_train=4, num_val=2, num_test=3, size=48, num_annotators=4, seed=3)


def _samples(n, seed=11, size=64, k=4):
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]
    return [generate_lesion_sample(r, size=size, num_annotators=k) for r in rngs]


@pytest.fixture(scope='module')
def many():
    # 300 samples at 64 px: enough for the statistics below, still about a second
    return _samples(300)


def _spread(masks):
    """Mean pairwise 1 - IoU among the non-empty masks (nan with fewer than two)."""
    ne = [m.astype(bool) for m in masks if m.any()]
    vals = [1 - (a & b).sum() / (a | b).sum() for a, b in itertools.combinations(ne, 2)]
    return float(np.mean(vals)) if vals else np.nan


def test_sample_format_and_determinism():
    s1 = generate_lesion_sample(np.random.default_rng(5), size=40, num_annotators=3)
    s2 = generate_lesion_sample(np.random.default_rng(5), size=40, num_annotators=3)
    s3 = generate_lesion_sample(np.random.default_rng(6), size=40, num_annotators=3)
    assert s1['image'].shape == (40, 40) and s1['image'].dtype == np.float32
    assert 0.0 <= s1['image'].min() and s1['image'].max() <= 1.0
    assert s1['masks'].shape == (3, 40, 40) and s1['masks'].dtype == np.uint8
    assert set(np.unique(s1['masks'])) <= {0, 1}
    assert isinstance(s1['contrast'], float)
    np.testing.assert_array_equal(s1['image'], s2['image'])
    np.testing.assert_array_equal(s1['masks'], s2['masks'])
    assert s1['contrast'] == s2['contrast']
    assert not np.array_equal(s1['image'], s3['image'])


def test_geometry_does_not_depend_on_resolution():
    lo = generate_lesion_sample(np.random.default_rng(8), size=64)
    hi = generate_lesion_sample(np.random.default_rng(8), size=128)
    assert lo['contrast'] == hi['contrast'] and lo['irregularity'] == hi['irregularity']
    # area fractions of each reader's mask agree across resolutions
    np.testing.assert_allclose(lo['masks'].mean((1, 2)), hi['masks'].mean((1, 2)), atol=0.01)


def test_empty_images(many):
    empty = [s for s in many if not s['has_lesion']]
    frac = len(empty) / len(many)
    # Binomial(300, 0.1): sd ~0.017
    assert 0.04 < frac < 0.17
    for s in empty:
        assert not s['masks'].any() and s['contrast'] == 0.0
    # every crop with a nodule has at least one reader who marked it
    for s in many:
        if s['has_lesion']:
            assert s['masks'].reshape(len(s['masks']), -1).any(1).any()


def test_faint_lesions_are_missed_more(many):
    les = [s for s in many if s['has_lesion']]
    contrast = np.array([s['contrast'] for s in les])
    miss = np.array([np.mean([not m.any() for m in s['masks']]) for s in les])
    c0, w = lg.READER_PARAMS['miss_centre'], lg.READER_PARAMS['miss_width']
    # faint: each reader misses with p > 0.7; strong: p < 0.05 (at least one reader marks)
    faint, strong = miss[contrast < c0 - w], miss[contrast > c0 + 3 * w]
    assert len(faint) > 20 and len(strong) > 20
    assert faint.mean() > 0.5 and strong.mean() < 0.1
    # monotone on average across contrast bins
    edges = (0, c0 - w, c0, c0 + w, c0 + 2 * w, 1)
    bins = [miss[(contrast >= lo) & (contrast < hi)].mean() for lo, hi in zip(edges, edges[1:])]
    assert all(a >= b for a, b in zip(bins, bins[1:])), bins
    # the generative miss probability is the logistic it says: half of miss_max at the
    # centre, miss_max / 20 where exp((c - c0) / w) = 19
    top = lg.READER_PARAMS['miss_max']
    assert lg.miss_probability(c0) == pytest.approx(top / 2)
    assert lg.miss_probability(c0 + w * np.log(19)) == pytest.approx(top / 20)
    assert lg.miss_probability(0.0) > lg.miss_probability(0.2) > lg.miss_probability(0.5)


def test_annotator_spread_grows_with_irregularity(many):
    les = [s for s in many if s['has_lesion']]
    irr = np.array([s['irregularity'] for s in les])
    spread = np.array([_spread(s['masks']) for s in les])
    assert np.nanmean(spread) > 0.05
    low, high = np.nanmean(spread[irr < 0.33]), np.nanmean(spread[irr > 0.66])
    assert high > low + 0.04, (low, high)


def test_generate_writes_layout(tmp_path):
    root = str(tmp_path / 'les')
    meta = generate_synthetic_lesions(root, **SMALL)
    for split, n in (('train', 4), ('val', 2), ('test', 3)):
        with open(osp.join(root, 'splits', f'{split}.txt')) as f:
            ids = f.read().split()
        assert len(ids) == n
        for i in ids:
            with np.load(osp.join(root, 'samples', f'{i}.npz')) as z:
                assert z['image'].shape == (48, 48) and z['image'].dtype == np.float32
                assert z['masks'].shape == (4, 48, 48) and z['masks'].dtype == np.uint8
    assert meta['generator']['params'] == dict(SMALL)
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f) == meta
    # sample i depends only on the seed and i
    rng = np.random.SeedSequence(SMALL['seed']).spawn(1)[0]
    s0 = generate_lesion_sample(np.random.default_rng(rng), 48, 4)
    with np.load(osp.join(root, 'samples', 'lesion00000.npz')) as z:
        np.testing.assert_array_equal(z['masks'], s0['masks'])


def test_ensure_idempotent_and_regenerates(tmp_path):
    root = str(tmp_path / 'les')
    meta = ensure_synthetic_lesions(root, **SMALL)
    path = osp.join(root, 'samples', 'lesion00000.npz')
    mtime = os.stat(path).st_mtime_ns
    assert ensure_synthetic_lesions(root, **SMALL) == meta
    assert os.stat(path).st_mtime_ns == mtime
    meta2 = ensure_synthetic_lesions(root, **dict(SMALL, num_annotators=2))
    assert meta2['num_annotators'] == 2
    with np.load(path) as z:
        assert z['masks'].shape[0] == 2
    # no temp or old folders left next to it
    assert sorted(os.listdir(tmp_path)) == ['.les.lock', 'les']
    with pytest.raises(TypeError, match='unknown'):
        ensure_synthetic_lesions(root, num_cases=3)


def test_ensure_refuses_foreign_folder(tmp_path):
    root = tmp_path / 'other'
    root.mkdir()
    (root / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not a SyntheticLesions'):
        ensure_synthetic_lesions(str(root), **SMALL)
    assert (root / 'keep.txt').exists()


def test_interrupted_generation_leaves_no_meta(tmp_path, monkeypatch):
    root = str(tmp_path / 'les')
    calls = {'n': 0}
    real = lg.generate_lesion_sample

    def boom(*args, **kwargs):
        calls['n'] += 1
        if calls['n'] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lg, 'generate_lesion_sample', boom)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_lesions(root, **SMALL)
    assert not osp.exists(root)
    assert [e for e in os.listdir(tmp_path) if '.tmp-' in e or '.old-' in e] == []
    # the plain generator interrupted in place: samples but no meta.json
    calls['n'] = 0
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_lesions(root, **SMALL)
    assert osp.isdir(osp.join(root, 'samples'))
    assert not osp.exists(osp.join(root, 'meta.json'))
    # an interrupted regeneration keeps the previous complete data root
    monkeypatch.setattr(lg, 'generate_lesion_sample', real)
    shutil.rmtree(root)
    meta = ensure_synthetic_lesions(root, **SMALL)
    monkeypatch.setattr(lg, 'generate_lesion_sample', boom)
    calls['n'] = 0
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_lesions(root, **dict(SMALL, seed=4))
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f) == meta


def test_synthetic_lesion_dataset_generates_and_runs_the_config_pipeline(tmp_path):
    from mmengine import Config

    from mmsam.registry import DATASETS
    cfg = Config.fromfile('configs/_base_/datasets/synthetic_lesions.py')
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.update(data_root=str(tmp_path / 'lesions'),
                       generator=dict(num_train=2, num_val=0, num_test=3, size=64))
    ds = DATASETS.build(dataset_cfg)
    assert len(ds) == 3 and ds.metainfo['classes'] == ('background', 'lesion')
    item = ds[0]
    sample = item['data_samples']
    assert item['inputs'].shape == (3, 128, 128)  # resized to the network input
    assert sample.gt_annotations.data.shape == (4, 64, 64)  # kept at the loaded size
    assert sample.gt_sem_seg.data.shape == (1, 128, 128)
    assert len(sample.prompt_box) == 4 and sample.ori_shape == (64, 64)
    # the test-time box is the same on every read
    assert list(ds[0]['data_samples'].prompt_box) == list(sample.prompt_box)


def test_logistic_is_the_plain_formula_without_its_overflow():
    import warnings
    for dtype in (np.float32, np.float64):
        z = np.array([-2000.0, -800.0, -100.0, -87.0, -30.0, -1.0, 0.0, 2.5, 50.0, 900.0],
                     dtype)
        with np.errstate(over='ignore'):
            plain = 1.0 / (1.0 + np.exp(-z))
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # an overflow would raise here
            got = lg.logistic(z)
        assert got.dtype == dtype
        fits = -z < np.log(np.finfo(dtype).max) - 1.0
        np.testing.assert_array_equal(got[fits], plain[fits])  # bit for bit where it fits
        np.testing.assert_allclose(got, plain, rtol=1e-6, atol=np.finfo(dtype).tiny)


def test_samples_raise_no_overflow_warning():
    """The lesion profile's sigmoid overflowed (RuntimeWarning: overflow encountered in exp)
    far outside a soft nodule: sample 258 of the seed-11 stream (the 300 of ``many``) did."""
    import warnings
    seed = np.random.SeedSequence(11).spawn(259)[258]
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        sample = generate_lesion_sample(np.random.default_rng(seed), size=32)
    assert sample['masks'].any()  # it holds a nodule, whose profile was computed

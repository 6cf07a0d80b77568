"""SyntheticAbdomen: a seeded procedural generator of CT-like abdominal volumes.

It mimics the Synapse multi-organ CT benchmark (8 organs + background, slices for training,
volumes for testing) so that every config runs end to end without downloading data. Each case
is an axial stack in radiological convention (image left = patient's right, image top =
anterior, slice 0 = most superior) with

* a body outline (super-ellipse, flatter posteriorly) with subcutaneous fat and a muscle wall,
  ribs in the upper slices, spine with discs and spinal canal, paraspinal and psoas muscles,
  lung bases in the first slices, bowel/mesenteric fat with gas pockets, IVC and splenic vein;
* eight labelled organs, each a smoothly deformed ellipsoid (or bent / tubular variant) whose
  position, size, orientation and contrast vary per case: liver (two lobes, vessels, optional
  lesion), spleen, kidneys (cortex, medulla, sinus), gallbladder, stomach (wall, content,
  optional air-fluid level), pancreas (bent, lobulated), aorta (tube along z);
* CT-like image formation: per-case contrast-enhancement level, organ intensities that overlap
  (liver ~ spleen, pancreas ~ bowel ~ muscle, gallbladder ~ stomach content), partial-volume
  blur, a smooth bias field, correlated noise, and a jittered soft-tissue window to [0, 1].

Geometry is defined in millimetres over a fixed field of view (:data:`FOV_MM` in-plane,
:data:`Z_EXTENT_MM` along z) and all geometric randomness is drawn before any voxel-sized noise,
so ``size``/``depth`` change the resolution of a case, not its anatomy.
"""
import os
import os.path as osp

import numpy as np
from scipy import ndimage

from ..converters.nnunet_preprocessing import foreground_stats
from ..io.data_root import (
    META_FILE, TEST_VOLUME_DIR, TRAIN_SLICE_DIR, TRAIN_VOLUME_DIR, slice_stem, write_meta,
    write_split)
from ..io.npz import save_slice, save_volume
from .generated_root import ensure_generated, read_meta_or_none, written_by

CLASSES = ('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder', 'liver',
           'stomach', 'aorta', 'pancreas')
PALETTE = [[0, 0, 0], [255, 127, 14], [44, 160, 44], [148, 103, 189], [255, 255, 0],
           [214, 39, 40], [31, 119, 180], [23, 190, 207], [227, 119, 194]]

GENERATOR_NAME = 'SyntheticAbdomen'
# Bump whenever the generated data change for the same parameters, so that
# ensure_synthetic_abdomen regenerates data roots written by an older generator.
GENERATOR_VERSION = 1
DEFAULT_PARAMS = dict(num_train_cases=8, num_test_cases=4, size=128, depth=32, seed=0)
# Boolean options. Recorded in meta.json only when True, so that a data root generated with
# the defaults has exactly the meta data (and files) it had before the option existed.
FLAG_PARAMS = dict(train_volumes=False)

FOV_MM = 400.0  # in-plane field of view (both axes)
Z_EXTENT_MM = 180.0  # cranio-caudal coverage of a case: liver dome to below the kidneys
_CLS = {name: i for i, name in enumerate(CLASSES)}


def case_spacing(size, depth):
    """Voxel spacing (z, y, x) in mm of a generated case of the given size and depth."""
    return (Z_EXTENT_MM / depth, FOV_MM / size, FOV_MM / size)


class _Grid:
    """Voxel-centre coordinates in mm, broadcastable to (D, H, W), and smooth random fields."""

    def __init__(self, size, depth):
        self.shape = (depth, size, size)
        self.spacing = case_spacing(size, depth)
        dz, dy, dx = self.spacing
        self.z = ((np.arange(depth) + 0.5) * dz).astype(np.float32)[:, None, None]
        self.y = ((np.arange(size) + 0.5) * dy - FOV_MM / 2).astype(np.float32)[None, :, None]
        self.x = ((np.arange(size) + 0.5) * dx - FOV_MM / 2).astype(np.float32)[None, None, :]

    @staticmethod
    def _interp_matrix(coords, lo, hi, step):
        # Gaussian bumps on control points every `step` mm (spanning the physical extent, not
        # the voxels, so the number of random draws does not depend on the resolution); rows
        # have unit L2 norm so the field has unit variance everywhere.
        ctrl = np.arange(lo - 2 * step, hi + 2 * step + 1e-6, step)
        w = np.exp(-0.5 * ((coords[:, None] - ctrl[None, :]) / step) ** 2)
        return (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32)

    def smooth_noise(self, rng, length, n=1):
        """Smooth unit-variance Gaussian random fields.

        Args:
            rng (np.random.Generator): random source.
            length (float): correlation length in mm.
            n (int): number of independent fields.

        Returns:
            ndarray: (n, D, H, W) float32.
        """
        step = length / 2.0
        mz = self._interp_matrix(self.z.ravel(), 0.0, Z_EXTENT_MM, step)
        my = self._interp_matrix(self.y.ravel(), -FOV_MM / 2, FOV_MM / 2, step)
        mx = self._interp_matrix(self.x.ravel(), -FOV_MM / 2, FOV_MM / 2, step)
        (d, h, w), cz, cy, cx = self.shape, mz.shape[1], my.shape[1], mx.shape[1]
        ctrl = rng.standard_normal((n, cz, cy, cx)).astype(np.float32)
        # Separable, one axis at a time, each as a single large GEMM: many small (batched)
        # GEMMs make a multi-threaded BLAS crawl when another process shares the cores.
        t = ctrl.transpose(0, 1, 3, 2).reshape(n * cz * cx, cy) @ my.T  # (n, cz, cx, H)
        t = t.reshape(n, cz, cx, h).transpose(0, 1, 3, 2).reshape(n * cz * h, cx) @ mx.T
        t = t.reshape(n, cz, h * w).transpose(1, 0, 2).reshape(cz, n * h * w)
        t = (mz @ t).reshape(d, n, h, w)
        return np.ascontiguousarray(t.transpose(1, 0, 2, 3))

    def smooth_curve(self, rng, length, n=1):
        """Smooth unit-variance random functions of z: (n, D, 1, 1) float32."""
        mz = self._interp_matrix(self.z.ravel(), 0.0, Z_EXTENT_MM, length / 2.0)
        ctrl = rng.standard_normal((n, mz.shape[1])).astype(np.float32)
        return (ctrl @ mz.T)[:, :, None, None]


def _ellipsoid(grid, center, radii, angle=0.0):
    """Normalised radius q of an ellipsoid rotated by ``angle`` (rad) in the axial plane.

    ``q < 1`` inside. ``center``/``radii`` are (z, y, x) in mm; the in-plane radii are along the
    rotated axes (u = cos*dx + sin*dy, v = -sin*dx + cos*dy). A z radius of ``None`` gives an
    infinite cylinder along z, returned as (1, H, W) (cheaper; it broadcasts). Returns
    (D, H, W) float32 otherwise.
    """
    # float32 throughout: a float64 scalar or centre would silently promote the whole volume
    f32 = np.float32
    cz, cy, cx = (np.asarray(v, f32) for v in center)
    rz, ry, rx = (None if v is None else np.asarray(v, f32) for v in radii)
    dx, dy = grid.x - cx, grid.y - cy
    c, s = f32(np.cos(angle)), f32(np.sin(angle))
    u = (c * dx + s * dy) / rx
    v = (-s * dx + c * dy) / ry
    q2 = u * u + v * v
    if rz is not None:
        w = (grid.z - cz) / rz
        q2 = q2 + w * w
    return np.sqrt(q2)


def _deform(q, noise, amp):
    """Implicit function of a smoothly deformed shape: negative inside, about -1 at its centre.

    The noise is clipped so that ``amp * 2.5 < 1`` keeps every shape's centre inside it.
    """
    return q - 1.0 + amp * np.clip(noise, -2.5, 2.5)


def _body(rng, g, nb):
    """Body outline, wall layers, spine and muscles (unlabelled anatomy); ``nb``: 3 fields."""
    b = {}
    ax, ay = rng.uniform(135, 170), rng.uniform(105, 130)
    y0 = rng.uniform(-10, 10)
    post = rng.uniform(0.85, 0.95)  # the back is flatter and shorter than the belly
    p_ant, p_post = rng.uniform(2.0, 2.4), rng.uniform(2.6, 3.4)
    taper = rng.uniform(-0.08, 0.08)
    fat0, mus0 = rng.uniform(8, 28), rng.uniform(6, 12)

    axz = ax * (1 + taper * (g.z / Z_EXTENT_MM - 0.5))
    dy = g.y - y0
    back = dy > 0
    ayh = np.where(back, ay * post, ay).astype(np.float32)
    # super-ellipse |x/a|^p + |y/b|^p < 1 with p depending on the half; the powers are taken on
    # the small (D, 1, W) and (1, H, 1) factors only
    xs = np.abs(g.x / axz)
    ps = np.where(back, p_post, p_ant).astype(np.float32)
    body = np.where(back, xs ** p_post, xs ** p_ant) + np.abs(dy / ayh) ** ps + \
        0.035 * nb[0] < 1
    depth = np.stack([ndimage.distance_transform_edt(s, sampling=g.spacing[1:])
                      for s in body]).astype(np.float32)
    t_fat = fat0 * np.clip(1 + 0.35 * nb[1], 0.4, None)
    t_mus = mus0 * np.clip(1 + 0.3 * nb[2], 0.5, None)
    b['body'] = body
    b['muscle'] = body & (depth >= t_fat) & (depth < t_fat + t_mus)
    # 2 mm of extraperitoneal fat between the muscle wall and the organs
    b['cavity'] = body & (depth >= t_fat + t_mus + 2)

    # Ribs: sparse bright ovals inside the muscle wall of the upper slices; the costal margin
    # rises towards the front, and there are none at the front midline or over the spine.
    n_ribs, phase = rng.integers(9, 13), rng.uniform(0, 2 * np.pi)
    rib_end = rng.uniform(90, 130)
    theta = np.arctan2(dy, g.x)
    front = np.clip(-dy / ay, 0, 1)
    ribs = (np.cos(n_ribs * theta + 0.05 * g.z + phase) > 0.75) & (g.z < rib_end - 70 * front)
    ribs &= body & (depth >= t_fat + 0.2 * t_mus) & (depth < t_fat + t_mus + 1)
    ribs &= ~(np.abs(g.x) < 0.25 * ax)
    b['ribs'] = ribs

    sx, sy = ax / 155.0, ay / 112.0
    spine_y = y0 + ay * post - rng.uniform(50, 62) * sy
    vx, vy = rng.uniform(18, 23), rng.uniform(15, 19)
    qv = _ellipsoid(g, (0, spine_y, 0), (None, vy, vx))
    canal_y = spine_y + vy + 9
    canal = _ellipsoid(g, (0, canal_y, 0), (None, 7, 8)) < 1
    lamina = (_ellipsoid(g, (0, canal_y + 3, 0), (None, 9, 20)) < 1) & ~canal
    spinous = _ellipsoid(g, (0, canal_y + 20, 0), (None, 14, 5)) < 1
    disc_period, disc_phase = rng.uniform(28, 34), rng.uniform(0, 34)
    disc = ((g.z + disc_phase) % disc_period) < 6
    b['vertebra'] = np.broadcast_to(qv < 1, g.shape)
    b['cortex'] = np.broadcast_to(((qv < 1) & (qv > 0.8)) | lamina | spinous, g.shape)
    b['disc'] = (qv < 1) & disc
    b['canal'] = np.broadcast_to(canal, g.shape)
    para = np.zeros(g.shape[1:], bool)
    for side in (-1, 1):
        para |= (_ellipsoid(g, (0, canal_y + 12, side * (vx + 20)), (None, 22, 24)) < 1)[0]
    b['paraspinal'] = para & body & (depth >= t_fat)
    # Psoas: appear below the diaphragm and grow caudally beside the vertebral body.
    zps = rng.uniform(60, 100)
    rps = np.clip(4 + 22 * (g.z - zps) / 90.0, 0, 24)
    psoas = np.zeros(g.shape, bool)
    for side in (-1, 1):
        psoas |= (_ellipsoid(g, (0, spine_y - 2, side * (vx + 10 + rps)),
                             (None, 0.8 * np.maximum(rps, 1e-3), np.maximum(rps, 1e-3))) < 1)
    b['psoas'] = psoas & (rps > 2)
    b['bone'] = b['vertebra'] | b['cortex'] | b['ribs']
    b.update(ax=ax, ay=ay, y0=y0, sx=sx, sy=sy, spine_y=spine_y, vx=vx, vy=vy)
    return b


def _organs(rng, g, b, noise, fine):
    """Sample the eight organs; returns {class name: dict(f=implicit function, ...)}.

    ``noise``: 6 coarse and ``fine``: 3 finer smooth fields that deform the shapes.
    """
    sx, sy, y0, spine_y = b['sx'], b['sy'], b['y0'], b['spine_y']
    zs = rng.uniform(-15, 15)  # where the scan starts relative to the anatomy

    def jit(scale):
        return rng.uniform(-scale, scale)

    def size():
        return rng.uniform(0.85, 1.15)

    o = {}

    s = size()
    f_st = _deform(_ellipsoid(g, (60 + zs + jit(8), y0 - 38 * sy + jit(8), 52 * sx + jit(8)),
                              (45 * s, 32 * sy * s, 40 * sx * s), rng.uniform(-0.8, -0.2)),
                   noise[0], 0.2)
    o['stomach'] = dict(f=f_st, gas=rng.random() < 0.6, gas_level=rng.uniform(0.1, 0.45))

    s = size()
    c_r = (62 + zs + jit(6), y0 - 5 * sy + jit(8), -72 * sx + jit(6))
    q_r = _ellipsoid(g, c_r, (rng.uniform(60, 72), 75 * sy * s, 62 * sx * s), jit(0.2))
    c_l = (c_r[0] - rng.uniform(15, 25), y0 - 55 * sy + jit(6), -5 * sx + jit(10))
    q_l = _ellipsoid(g, c_l, (40 * s, 28 * sy * s, rng.uniform(35, 55) * sx * s),
                     rng.uniform(-0.35, 0.1))
    o['liver'] = dict(f=_deform(np.minimum(q_r, q_l), noise[1], 0.15))

    # Spleen: along the posterolateral body wall, its short axis on the wall's normal.
    s = size()
    cy, cx = y0 + 35 * sy + jit(8), 95 * sx + jit(6)
    normal = np.arctan2((cy - y0) / b['ay'] ** 2, cx / b['ax'] ** 2)
    o['spleen'] = dict(f=_deform(_ellipsoid(g, (55 + zs + jit(8), cy, cx),
                                            (45 * s, 50 * s, 22 * s), normal + jit(0.2)),
                                 noise[2], 0.15))

    # Kidneys: posterior beside the spine, hilum facing anteromedially (bean = ellipsoid minus
    # a notch), the right one lower; cortex/medulla/sinus are drawn in the image later.
    for name, side, zc in (('right_kidney', -1, 112), ('left_kidney', 1, 98)):
        s = size()
        angle = np.arctan2(-1.0, -side) + jit(0.3)  # direction of the hilum
        d = np.array([np.sin(angle), np.cos(angle)])  # (y, x) like the centre
        c = np.array([spine_y - 3 + jit(6), side * (b['vx'] + 45) * sx + jit(6)])
        rz, ru, rv = rng.uniform(45, 55) * s, 22 * s, 32 * s
        kz = zc + zs + jit(8)
        q = _ellipsoid(g, (kz, *c), (rz, rv, ru), angle)
        notch = _ellipsoid(g, (kz, *(c + 1.0 * ru * d)), (0.4 * rz, 0.45 * ru, 0.45 * ru))
        f = np.maximum(_deform(q, noise[3 + (side > 0)], 0.08), 1.0 - notch)
        sinus = _ellipsoid(g, (kz, *(c + 0.45 * ru * d)), (0.45 * rz, 0.35 * rv, 0.4 * ru))
        o[name] = dict(f=f, sinus=sinus < 1, medulla=fine[2])

    s = size()
    o['gallbladder'] = dict(f=_deform(
        _ellipsoid(g, (100 + zs + jit(8), y0 - 48 * sy + jit(6), -38 * sx + jit(6)),
                   (28 * s, 14 * s, 17 * s), rng.uniform(0, np.pi)), fine[0], 0.12))

    # Aorta: a tube in front of the vertebral body, meandering slightly, ending at the
    # bifurcation (possibly below the scan).
    ra = rng.uniform(8, 12)
    ay_ = spine_y - b['vy'] - ra - rng.uniform(1, 4)
    mean = g.smooth_curve(rng, 60, 2)
    axc = rng.uniform(0, 12) * sx + 2.5 * mean[0]
    ayc = ay_ + 2.5 * mean[1]
    q_a = np.sqrt(((g.x - axc) / ra) ** 2 + ((g.y - ayc) / ra) ** 2)
    z_bif = rng.uniform(150, 200) + zs
    q_a = np.where(g.z < z_bif, q_a, np.inf).astype(np.float32)
    o['aorta'] = dict(f=_deform(q_a, noise[5], 0.05))

    # Pancreas: a bent, lobulated ellipsoid from the duodenum (head, image left, thicker) over
    # the aorta to the splenic hilum (tail, image right, higher and more posterior).
    s = size()
    x0, half = 20 * sx + jit(6), 58 * sx * s
    bend, tilt, ztilt = rng.uniform(6, 16) * sy, rng.uniform(6, 18) * sy, rng.uniform(5, 18)
    ry0, rz0 = 10 * s, 16 * s
    t = (g.x - x0) / half
    ry_t = np.maximum(ry0 * (1 - 0.3 * t), 2.0)
    ta = (float(np.mean(axc)) - x0) / half
    # put its back 4 mm in front of the aorta (room for the splenic vein)
    yp = ay_ - ra - 4 - ry0 * (1 - 0.3 * ta) - (-bend * (1 - ta ** 2) + tilt * ta)
    yc = yp - bend * (1 - t ** 2) + tilt * t
    zc = 96 + zs + jit(8) - ztilt * t
    q_p = np.sqrt(t ** 2 + ((g.y - yc) / ry_t) ** 2 + ((g.z - zc) / rz0) ** 2)
    o['pancreas'] = dict(f=_deform(q_p, fine[1], 0.22))
    # splenic vein along the pancreas' back (unlabelled, bright: a realistic distractor)
    q_sv = np.sqrt(((g.y - (yc + ry_t + 3)) / 4.5) ** 2 + ((g.z - zc) / 6.0) ** 2)
    b['splenic_vein'] = (q_sv < 1) & (t > -0.5) & (t < 0.95)
    # IVC: flattened tube to the patient's right of the aorta (unlabelled distractor)
    b['ivc'] = np.broadcast_to(
        _ellipsoid(g, (0, ay_ - rng.uniform(0, 8), -rng.uniform(22, 30) * sx),
                   (None, rng.uniform(7, 11), rng.uniform(11, 15))) < 1, g.shape)
    # lung bases behind the liver dome and spleen in the first slices
    lung = np.zeros(g.shape, bool)
    for side in (-1, 1):
        lung |= _ellipsoid(g, (-30 + zs + jit(10), y0 + 25 * sy, side * 85 * sx),
                           (rng.uniform(50, 65), 70 * sy, 60 * sx)) < 1
    b['lung'] = lung & b['cavity']
    return o


# paint order: later organs win where shapes overlap (e.g. gallbladder inside the liver notch)
_PAINT_ORDER = ('stomach', 'liver', 'spleen', 'right_kidney', 'left_kidney', 'pancreas',
                'gallbladder', 'aorta')


def _paint_labels(g, b, organs):
    """Label volume (D, H, W) uint8: organs inside the abdominal cavity, never in bone."""
    label = np.zeros(g.shape, np.uint8)
    for name in _PAINT_ORDER:
        label[(organs[name]['f'] < 0) & b['cavity']] = _CLS[name]
    blocked = b['bone'] | b['canal'] | b['paraspinal']
    label[blocked] = 0
    # Safety net for tiny grids: an organ squeezed out entirely gets its deepest part back.
    for name in _PAINT_ORDER:
        cls = _CLS[name]
        if not (label == cls).any():
            f = np.where(blocked, np.inf, organs[name]['f'])
            label[f <= f.min() + 0.25] = cls
    return label


def _intensities(rng):
    """Per-case tissue values in HU; ``e`` is the contrast-enhancement level of the scan."""
    e = rng.uniform(0.6, 1.25)
    u = rng.uniform
    return dict(
        air=-1000.0, fat=u(-110, -80), muscle=u(40, 60), bowel=u(15, 55), gas=u(-980, -850),
        lung=u(-900, -750), bone=u(500, 900), cancellous=u(180, 300), disc=u(70, 110),
        csf=u(0, 20), liver=55 + u(45, 70) * e, spleen=50 + u(50, 85) * e,
        cortex=50 + u(100, 150) * e, medulla=40 + u(30, 70) * e, sinus=u(-40, 10),
        pancreas=45 + u(25, 55) * e, stomach_wall=45 + u(30, 50) * e, stomach=u(-5, 45),
        gallbladder=u(0, 30), aorta=60 + u(110, 190) * e, vein=50 + u(60, 120) * e,
        portal=55 + u(70, 120) * e, lesion_drop=u(25, 60))


def _render(rng, g, b, organs, label, fields):
    """The CT image (D, H, W) in [0, 1] for a labelled anatomy; ``fields``: 4 smooth fields."""
    hu = _intensities(rng)
    mes, liv = fields[:2], fields[2:]
    bias = rng.uniform(-1, 1, (2, 7))
    bowel_thr, gas_thr = rng.uniform(-0.4, 0.5), rng.uniform(1.5, 2.2)
    has_lesion = rng.random() < 0.35
    calcified = rng.random() < 0.3
    window = (-160 + rng.uniform(-25, 25), 240 + rng.uniform(-25, 25))
    noise_hu, tex_hu = rng.uniform(8, 22), rng.uniform(4, 10)

    img = np.full(g.shape, hu['air'], np.float32)
    img[b['body']] = hu['fat']
    cav = b['cavity'] & ~b['lung']
    bowel = cav & (mes[0] > bowel_thr)
    img[bowel] = hu['bowel'] + 12 * mes[1][bowel]
    img[bowel & (mes[1] > gas_thr)] = hu['gas']
    img[b['lung']] = hu['lung']
    img[b['muscle'] | b['paraspinal'] | b['psoas']] = hu['muscle']
    img[b['ivc']] = hu['vein']
    img[b['splenic_vein']] = hu['portal']

    for name in ('spleen', 'pancreas', 'aorta', 'gallbladder', 'liver', 'stomach'):
        img[label == _CLS[name]] = hu[name]  # the stomach's wall and gas are added below
    liver = label == _CLS['liver']
    img[liver & (np.abs(liv[0]) < 0.07)] = hu['portal']  # ridges of a smooth field look vascular
    if has_lesion:
        img[liver & (liv[1] > 2.2)] -= hu['lesion_drop']
    stomach = label == _CLS['stomach']
    st = organs['stomach']
    img[stomach & (st['f'] > -0.18)] = hu['stomach_wall']
    if st['gas']:
        # air-fluid level: gas fills the anterior (top) part of the lumen in a supine patient
        ys = np.broadcast_to(g.y, g.shape)[stomach & (st['f'] <= -0.18)]
        if ys.size:
            level = np.quantile(ys, st['gas_level'])
            img[stomach & (st['f'] <= -0.18) & (g.y < level)] = hu['gas']
    gb = label == _CLS['gallbladder']
    img[gb & (organs['gallbladder']['f'] > -0.12)] += 25.0
    for name in ('right_kidney', 'left_kidney'):
        kid = label == _CLS[name]
        img[kid] = hu['cortex']
        img[kid & (organs[name]['f'] < -0.3) & (organs[name]['medulla'] > -0.3)] = hu['medulla']
        img[kid & organs[name]['sinus']] = hu['sinus']

    img[b['vertebra']] = hu['cancellous']
    img[b['disc']] = hu['disc']
    img[b['cortex'] | b['ribs']] = hu['bone']
    img[b['canal']] = hu['csf']

    # Voxel-level randomness last, so geometry does not depend on the resolution.
    dz, dy, dx = g.spacing
    tex = ndimage.gaussian_filter(rng.standard_normal(g.shape).astype(np.float32),
                                  (0.3, 2.5 / dy, 2.5 / dx))
    tex /= max(float(tex.std()), 1e-6)
    organ = label > 0
    img[organ] += tex_hu * tex[organ]
    if calcified:
        aorta = label == _CLS['aorta']
        img[aorta & (tex > 2.3)] = hu['bone']
    # partial volume (slice thickness and in-plane PSF), then scanner noise and a bias field
    img = ndimage.gaussian_filter(img, (0.35, 0.6, 0.6), mode='nearest')
    # smooth bias: a random quadratic over the field of view (multiplicative and additive)
    zn, yn, xn = 2 * g.z / Z_EXTENT_MM - 1, 2 * g.y / FOV_MM, 2 * g.x / FOV_MM
    terms = (zn, yn, xn, xn * yn, xn * xn - 0.3, yn * yn - 0.3, zn * xn)
    mul, add = (sum(np.float32(c) * t for c, t in zip(coef, terms)) for coef in bias)
    img = img * (1 + 0.02 * mul) + 6.0 * add
    noise = ndimage.gaussian_filter(rng.standard_normal(g.shape).astype(np.float32),
                                    (0.0, 0.6, 0.6))
    img += noise_hu / max(float(noise.std()), 1e-6) * noise
    lo, hi = window
    return np.clip((img - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def generate_case(rng, size=128, depth=32):
    """Generate one synthetic abdominal CT case.

    Args:
        rng (np.random.Generator): random source; the case is a function of its state.
        size (int): in-plane size H = W in voxels (field of view :data:`FOV_MM`).
        depth (int): number of axial slices D (coverage :data:`Z_EXTENT_MM`).

    Returns:
        tuple[ndarray, ndarray]: image (D, H, W) float32 in [0, 1] and label (D, H, W) uint8
        with ids into :data:`CLASSES`.
    """
    g = _Grid(int(size), int(depth))
    # two batches of smooth fields (shape/outline scale and texture scale), drawn first
    coarse, fine = g.smooth_noise(rng, 40, 9), g.smooth_noise(rng, 20, 7)
    b = _body(rng, g, coarse[:3])
    organs = _organs(rng, g, b, coarse[3:], fine[:3])
    label = _paint_labels(g, b, organs)
    image = _render(rng, g, b, organs, label, fine[3:])
    return image, label


def _check_params(params):
    valid = sorted({**DEFAULT_PARAMS, **FLAG_PARAMS})
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(f'SyntheticAbdomen got unknown parameter(s) {unknown}; '
                        f'valid ones are {valid}')
    flags = {key: params.get(key, default) for key, default in FLAG_PARAMS.items()}
    for key, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f'SyntheticAbdomen parameter {key} must be True or False, '
                            f'got {value!r}')
    p = dict(DEFAULT_PARAMS, **{k: v for k, v in params.items() if k not in FLAG_PARAMS})
    for key, value in p.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f'SyntheticAbdomen parameter {key} must be an int, got {value!r}')
        p[key] = int(value)
    minimum = dict(num_train_cases=0, num_test_cases=0, size=32, depth=8, seed=0)
    for key, low in minimum.items():
        if p[key] < low:
            raise ValueError(f'SyntheticAbdomen parameter {key}={p[key]} must be >= {low}')
    if p['num_train_cases'] + p['num_test_cases'] == 0:
        raise ValueError('SyntheticAbdomen needs at least one train or test case')
    p.update({key: True for key, value in flags.items() if value})
    return p


def _case_rngs(seed, n):
    # one independent stream per case: case i is the same whatever the number of cases
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def generate_synthetic_abdomen(data_root, num_train_cases=8, num_test_cases=4, size=128, depth=32,
                               seed=0, train_volumes=False):
    """Write a SyntheticAbdomen data root in mmsam's on-disk format (see :mod:`mmsam.datasets.io.data_root`).

    Training cases (``case0000`` ...) are written as 2D slices, test cases (numbered after
    them) as volumes with their spacing. With ``train_volumes`` the training cases are also
    written as volumes (``train_volumes/``, ``splits/train_volumes.txt``) and ``meta.json``
    gains the 3D keys ``intensity`` (``'unit'``), ``ct_foreground`` (statistics of the labelled
    voxels of the training cases) and ``target_spacing`` (None: no resampling); everything
    else is identical to the data written without it. ``meta.json`` is written last and marks
    completion; a stale one is removed first. Prefer :func:`ensure_synthetic_abdomen`, which
    also never leaves a half-written ``data_root`` behind.

    Args:
        data_root (str): output folder (created if needed; should be empty).
        num_train_cases (int): cases saved as slices for ``splits/train.txt``.
        num_test_cases (int): cases saved as volumes for ``splits/test.txt``.
        size (int): in-plane size in voxels.
        depth (int): slices per case.
        seed (int): seed of the whole data set.
        train_volumes (bool): also write the training cases as volumes (3D methods).

    Returns:
        dict: the meta data written to ``meta.json``.
    """
    p = _check_params(dict(num_train_cases=num_train_cases, num_test_cases=num_test_cases,
                           size=size, depth=depth, seed=seed, train_volumes=train_volumes))
    os.makedirs(data_root, exist_ok=True)
    if osp.exists(osp.join(data_root, META_FILE)):
        os.remove(osp.join(data_root, META_FILE))
    n_train, n_test = p['num_train_cases'], p['num_test_cases']
    volumes = p.get('train_volumes', False)
    names = [f'case{i:04d}' for i in range(n_train + n_test)]
    rngs = _case_rngs(p['seed'], n_train + n_test)
    spacing = case_spacing(p['size'], p['depth'])
    slices, foreground = [], []
    for name, rng in zip(names[:n_train], rngs[:n_train]):
        image, label = generate_case(rng, p['size'], p['depth'])
        for k in range(p['depth']):
            stem = slice_stem(name, k)
            save_slice(osp.join(data_root, TRAIN_SLICE_DIR, f'{stem}.npz'), image[k], label[k])
            slices.append(stem)
        if volumes:
            save_volume(osp.join(data_root, TRAIN_VOLUME_DIR, f'{name}.npz'), image, label,
                        spacing)
            foreground.append(image[label > 0])
    for name, rng in zip(names[n_train:], rngs[n_train:]):
        image, label = generate_case(rng, p['size'], p['depth'])
        save_volume(osp.join(data_root, TEST_VOLUME_DIR, f'{name}.npz'), image, label, spacing)
    write_split(data_root, 'train', slices)
    write_split(data_root, 'test', names[n_train:])
    if volumes:
        write_split(data_root, 'train_volumes', names[:n_train])
    meta = dict(
        classes=list(CLASSES), palette=[list(c) for c in PALETTE],
        spacing=list(spacing),
        spacing_note='(z, y, x) mm; axial slices, image left = patient right, top = anterior, '
                     'slice 0 most superior',
        train_cases=names[:n_train], test_cases=names[n_train:],
        generator=dict(name=GENERATOR_NAME, version=GENERATOR_VERSION, params=p))
    if volumes:
        meta.update(intensity='unit', target_spacing=None,
                    ct_foreground=foreground_stats(foreground) if foreground else None)
    write_meta(data_root, meta)
    return meta


def ensure_synthetic_abdomen(data_root, **params):
    """Generate the SyntheticAbdomen data root unless an identical one is already complete.

    Nothing is written when ``meta.json`` exists and records the same generator version and
    parameters, or, when ``train_volumes`` is False, the same ones with ``train_volumes``
    (such a data root holds every file of a slice-only one, byte for byte, so 2D and 3D configs
    can share it without regenerating it in turns). Otherwise the data are generated into a
    fresh temporary folder next to ``data_root`` and swapped in with renames, so an interrupted
    run leaves either the previous data root or none, never a partial one with a ``meta.json``.
    Concurrent callers (e.g. one per distributed rank) are serialised with a lock file next to
    ``data_root``.

    Args:
        data_root (str): target folder.
        **params: any of ``num_train_cases``, ``num_test_cases``, ``size``, ``depth``, ``seed``
            (defaults in :data:`DEFAULT_PARAMS`) and ``train_volumes`` (:data:`FLAG_PARAMS`).

    Returns:
        dict: the meta data of the data root.
    """
    params = _check_params(params)
    if not params.get('train_volumes'):
        meta = read_meta_or_none(data_root)
        superset = dict(name=GENERATOR_NAME, version=GENERATOR_VERSION,
                        params=dict(params, train_volumes=True))
        if written_by(meta, GENERATOR_NAME) and meta['generator'] == superset:
            return meta
    return ensure_generated(data_root, generate_synthetic_abdomen, GENERATOR_NAME,
                            GENERATOR_VERSION, params, 'SyntheticAbdomen')

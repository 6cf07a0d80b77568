"""A data root of mmsam's on-disk format: its layout, ``meta.json`` and split files.

The format (written by the dataset converters and the synthetic generators)::

    <data_root>/
      meta.json                       {"classes": [...], "palette": [...], "spacing_note": ...}
      train_slices/<case>_slice<NNN>.npz   (see slice_stem)
          image (H, W) float32 in [0, 1]; label (H, W) uint8 class ids (0 = background)
      test_volumes/<case>.npz
          image (D, H, W) float32 in [0, 1]; label (D, H, W) uint8; spacing (3,) float (z, y, x) mm
      train_volumes/<case>.npz        (3D methods) same schema as test_volumes/
      splits/train.txt                one slice name per line (file stem, no extension)
      splits/test.txt                 one case name per line
      splits/train_volumes.txt        (3D methods) one case name per line

Volumes resampled by a converter may also hold ``native_label`` (D0, H0, W0) uint8,
``native_spacing`` (3,) and ``native_shape`` (3,), so that evaluation runs on the original grid.
``meta.json`` of 3D data may hold ``intensity`` (``'hu'``, ``'mr'``, ``'zscore'`` or ``'unit'``),
``ct_foreground`` (``mean``, ``std``, ``percentile_00_5``, ``percentile_99_5`` of the labelled
voxels of the training cases, nnU-Net's CT normalisation statistics) and ``target_spacing``.

The ``.npz`` files are read and written by :mod:`mmsam.datasets.io.npz`; every writer is atomic
(:mod:`mmsam.utils.io`), so an interrupted conversion never leaves a half-written file that a
later run would take for a good one.
"""
import json
import os.path as osp
from typing import List, Sequence, Tuple

from mmsam.utils.io import atomic_write_text

TRAIN_SLICE_DIR = 'train_slices'
TEST_VOLUME_DIR = 'test_volumes'
TRAIN_VOLUME_DIR = 'train_volumes'
SPLIT_DIR = 'splits'
META_FILE = 'meta.json'



def slice_stem(case: str, index: int) -> str:
    """Stem of slice ``index`` of ``case`` in ``train_slices/``: ``<case>_slice<NNN>``."""
    return f'{case}_slice{index:03d}'


def parse_slice_stem(stem: str) -> Tuple[str, int]:
    """Split a slice stem into ``(case, index)``; index 0 when the stem has no slice number."""
    case, _, index = stem.rpartition('_slice')
    return (case, int(index)) if case and index.isdigit() else (stem, 0)


def read_split(data_root: str, name: str) -> List[str]:
    """Read ``splits/<name>.txt`` under ``data_root`` into a list of non-empty names."""
    path = osp.join(data_root, SPLIT_DIR, f'{name}.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file {path} does not exist; run the dataset converter '
                                f'for {data_root} first')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def write_split(data_root: str, name: str, items: Sequence[str]) -> None:
    """Write ``items`` one per line to ``splits/<name>.txt`` under ``data_root``."""
    atomic_write_text(osp.join(data_root, SPLIT_DIR, f'{name}.txt'),
                      ''.join(f'{item}\n' for item in items))


def read_meta(data_root: str) -> dict:
    """Read ``meta.json`` under ``data_root``."""
    path = osp.join(data_root, META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist; run the dataset converter first')
    with open(path) as f:
        return json.load(f)


def write_meta(data_root: str, meta: dict) -> None:
    """Write ``meta`` as ``meta.json`` under ``data_root``."""
    atomic_write_text(osp.join(data_root, META_FILE), json.dumps(meta, indent=2))

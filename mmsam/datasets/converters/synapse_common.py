"""What the Synapse converter's three jobs share: TransUNet's split, ids and the error type.

The jobs: :mod:`.synapse_transunet` (TransUNet's preprocessed release), :mod:`.synapse_btcv`
(the raw BTCV release) and :mod:`.synapse_volumes` (nnU-Net-style volumes: raw HU, resampling),
run by :func:`mmsam.datasets.converters.synapse.convert_synapse`.
"""
import re
from typing import Iterable, Optional

import numpy as np

from mmsam.datasets.synapse_dataset import CLASSES
from .errors import ConversionError

CONVERTER_NAME = 'SynapseConverter'
CONVERTER_VERSION = 2

# The 30 labelled BTCV cases (img0001-0010, img0021-0040) and TransUNet's 12 test cases.
ALL_CASES = tuple(f'case{n:04d}' for n in (*range(1, 11), *range(21, 41)))
TEST_CASES = tuple(f'case{n:04d}' for n in (1, 2, 3, 4, 8, 22, 25, 29, 32, 35, 36, 38))
TRAIN_CASES = tuple(c for c in ALL_CASES if c not in TEST_CASES)

HU_WINDOW = (-125.0, 275.0)
NUM_CLASSES = len(CLASSES)
NUM_BTCV_IDS = 14  # raw BTCV labels: background + 13 organs
INTENSITY_MODES = ('window', 'hu')

SLICE_RE = re.compile(r'^(case\d{4})_slice(\d+)$')


class SynapseConversionError(ConversionError):
    """A Synapse source file or argument that the conversion cannot use."""



def integer_labels(label: np.ndarray, path: str, max_id: Optional[int] = None) -> np.ndarray:
    """Check that ``label`` holds non-negative integer ids (<= ``max_id``); return them as int64."""
    label = np.asarray(label)
    if label.size and not np.all(np.isfinite(label)):
        raise SynapseConversionError(f'{path}: label contains NaN/inf; the file is damaged, '
                                     're-download it')
    ids = np.rint(label).astype(np.int64)
    if label.size and (not np.array_equal(ids, label) or ids.min() < 0):
        raise SynapseConversionError(f'{path}: label values must be non-negative integer ids, got '
                                     f'values in [{label.min()}, {label.max()}]; is this a label '
                                     'file of the release?')
    if max_id is not None and label.size and ids.max() > max_id:
        raise SynapseConversionError(
            f'{path}: label id {ids.max()} > {max_id}; TransUNet\'s release has ids 0-{max_id} '
            f'only. For the raw BTCV labels (ids 0-13) use --format btcv')
    return ids


def abbreviate(names: Iterable[str], limit: int = 20) -> str:
    """The first ``limit`` names joined by commas, and how many there are in all."""
    names = list(names)
    return ', '.join(names[:limit]) + (f', ... ({len(names)} in all)' if len(names) > limit
                                       else '')

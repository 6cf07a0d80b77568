"""Writing a 2D-trained data root's training slices and its split files (LA, PROMISE12)."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from mmsam.datasets.io.data_root import TRAIN_SLICE_DIR, write_split
from mmsam.datasets.io.npz import save_slice
from .errors import ConversionError
from .name_lists import slice_names
from .slice_lists import select_slices


def write_case_slices(root: str, case: str, image: np.ndarray, label: np.ndarray,
                      foreground: Set[str]) -> List[str]:
    """Write every axial slice of a case to ``root/train_slices/``.

    Args:
        root (str): the (staged) data root.
        case (str): the case name.
        image (ndarray): (D, H, W) intensities.
        label (ndarray): (D, H, W) class ids.
        foreground (set[str]): the names of slices with foreground are added here.

    Returns:
        list[str]: the case's slice names, in slice order.
    """
    names = slice_names(case, image.shape[0])
    for name, image_k, label_k in zip(names, image, label):
        save_slice(osp.join(root, TRAIN_SLICE_DIR, f'{name}.npz'), image_k, label_k)
        if label_k.any():
            foreground.add(name)
    return names


def write_slice_splits(root: str, names: Dict[str, List[str]], labelled_cases: Sequence[str],
                       test_cases: Sequence[str], train_slices: Optional[str],
                       foreground: Set[str], all_train: bool,
                       error: type = ConversionError) -> List[str]:
    """Write ``splits/train.txt`` (labelled slices), ``train_all.txt`` and ``test.txt``.

    Args:
        root (str): the (staged) data root.
        names (dict[str, list[str]]): every sliced case -> its slice names, in case order.
        labelled_cases (sequence[str]): the labelled cases.
        test_cases (sequence[str]): the test cases (volumes).
        train_slices (str | None): a slice list choosing the labelled slices
            (:func:`.slice_lists.select_slices`); None: all slices of the labelled cases.
        foreground (set[str]): the written slices with foreground.
        all_train (bool): also list every sliced case's slices in ``train_all.txt``.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        list[str]: the slices of ``splits/train.txt``.
    """
    train_names = [n for c in labelled_cases for n in names[c]]
    if train_slices is not None:
        train_names = select_slices(train_slices, {c: names[c] for c in labelled_cases},
                                    foreground, error=error)
    write_split(root, 'train', train_names)
    if all_train:
        write_split(root, 'train_all', [n for c in names for n in names[c]])
    write_split(root, 'test', test_cases)
    return train_names

"""Writing a 2D-trained data root's training slices and its split files (LA, PROMISE12)."""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from mmsam.datasets.io.data_root import TRAIN_SLICE_DIR, write_meta, write_split
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


def write_training_slices(root: str, cases: Sequence[str], read_case: Callable[[str], tuple],
                          log: Callable[[str], None]) -> Tuple[Dict[str, List[str]], Set[str]]:
    """Write every slice of ``cases`` to ``root/train_slices/``, logging one line per case.

    Args:
        root (str): the (staged) data root.
        cases (sequence[str]): the cases to slice.
        read_case (callable): case -> (image (D, H, W), label (D, H, W), ...).
        log (callable): called with a progress message per case.

    Returns:
        tuple[dict[str, list[str]], set[str]]: case -> its slice names, and the names of the
        slices with foreground.
    """
    names, foreground = {}, set()
    for i, case in enumerate(cases, 1):
        image, label = read_case(case)[:2]
        log(f'[train {i}/{len(cases)}] {case}: {image.shape[0]} slices '
            f'{image.shape[1]}x{image.shape[2]}')
        names[case] = write_case_slices(root, case, image, label, foreground)
    return names, foreground


def finish_slice_dataset(root: str, meta: dict, names: Dict[str, List[str]],
                         foreground: Set[str], train_cases: Sequence[str],
                         labelled_cases: Sequence[str], test_cases: Sequence[str],
                         train_slices: Optional[str], all_train: bool, converter: dict,
                         error: type) -> dict:
    """Write the split files (:func:`write_slice_splits`), then ``meta.json`` last (it marks
    the data root complete).

    Args:
        root (str): the (staged) data root.
        meta (dict): the dataset's own ``meta.json`` fields (classes, source, spacing, ...);
            the case lists, slice count, split names and ``converter`` are added after them.
        names, foreground, labelled_cases, test_cases, train_slices, all_train, error: as
            :func:`write_slice_splits`.
        train_cases (sequence[str]): every training case of the release.
        converter (dict): the converter's ``name`` and ``version``.

    Returns:
        dict: the contents of ``meta.json``.
    """
    train_names = write_slice_splits(root, names, labelled_cases, test_cases, train_slices,
                                     foreground, all_train, error)
    meta = dict(meta, train_cases=train_cases, test_cases=test_cases,
                labelled_cases=labelled_cases, num_train_slices=len(train_names),
                train_slice_list=None if train_slices is None else osp.abspath(train_slices),
                splits=['train', *(['train_all'] if all_train else []), 'test'],
                converter=converter)
    write_meta(root, meta)
    return meta


def summary(dst: str, meta: dict) -> str:
    """The converter's last log line for a slice data root written by
    :func:`finish_slice_dataset`."""
    return (f'wrote {dst}: {meta["num_train_slices"]} training slices of '
            f'{len(meta["labelled_cases"])} labelled case(s), {len(meta["test_cases"])} test '
            'volumes')

"""Training-slice lists for converters: a user's list or a published one (e.g. H-SAM's).

:func:`read_slice_list` is the one reader of slice lists: one ``<case>_slice<NNN>`` a line
(a folder and an ``.npz``/``.npy`` suffix are dropped), blank lines and ``#`` comments skipped;
a line that is not a slice name, or a slice listed twice, is an error.
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Set, Tuple

from .errors import ConversionError
from .name_lists import read_name_list


def slice_case(name: str) -> str:
    """The case of a slice name ``<case>_sliceNNN``; ValueError for other names."""
    case, sep, index = name.rpartition('_slice')
    if not sep or not case or not index.isdigit():
        raise ValueError(name)
    return case


def read_slice_list(path: str, error: type = ConversionError) -> Tuple[List[str], List[str]]:
    """Read a slice list (one ``<case>_sliceNNN`` a line, ``.npz``/``.npy`` suffixes dropped).

    Args:
        path (str): the list file.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        tuple[list[str], list[str]]: slice names in file order and their cases in order of
        first appearance.
    """
    def slice_name(line):
        name = osp.basename(line)
        for suffix in ('.npz', '.npy'):
            name = name[:-len(suffix)] if name.endswith(suffix) else name
        try:
            slice_case(name)
        except ValueError:
            raise error(f'slice list {path}: {line!r} is not a <case>_slice<NNN> name')
        return name

    names = read_name_list(path, 'the slice list', 'slice', normalise=slice_name,
                           repeats='error', error=error)
    return names, list(dict.fromkeys(slice_case(n) for n in names))


def select_slices(path: str, written: Dict[str, List[str]], foreground: Set[str],
                  error: type = ConversionError) -> List[str]:
    """Check a slice list against the slices a converter wrote and return it.

    Every listed slice must have been written. A listed slice without foreground, or a
    foreground slice of a listed case left out, is reported in one warning: published lists
    (H-SAM's) hold exactly the labelled cases' foreground slices, so either means the source's
    slice order differs from the list's.

    Args:
        path (str): the list file (for messages).
        written (dict[str, list[str]]): case -> its written slice names.
        foreground (set[str]): written slice names whose label has foreground.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        list[str]: the listed slice names, in file order.
    """
    names, cases = read_slice_list(path, error)
    available = {n for stems in written.values() for n in stems}
    missing = [n for n in names if n not in available]
    if missing:
        raise error(f'slice list {path} names {len(missing)} slice(s) that were not written '
                    f'(e.g. {missing[:3]}): its cases {cases} must be the labelled training '
                    'cases and their slices exist in the source; pass --train-slices all to '
                    'train on every slice of the labelled cases')
    listed = set(names)
    empty = [n for n in names if n not in foreground]
    left_out = [n for c in cases for n in written.get(c, []) if n in foreground and
                n not in listed]
    if empty or left_out:
        warnings.warn(f'slice list {path}: {len(empty)} listed slice(s) without foreground '
                      f'(e.g. {empty[:3]}) and {len(left_out)} foreground slice(s) not listed '
                      f'(e.g. {left_out[:3]}); the list may not match this source\'s slice '
                      'order')
    return names


def labelled_cases_from_list(src: str, train_slices: Optional[str], published: str,
                             train_cases: List[str], labelled: Optional[int],
                             labelled_list: Optional[str], default_labelled: int,
                             error: type = ConversionError
                             ) -> Tuple[Optional[str], Optional[List[str]]]:
    """The labelled cases a slice list names, with ``'hsam'`` resolved to ``published``.

    Args:
        src (str): the source folder (named in messages).
        train_slices (str | None): ``'hsam'``, a slice-list file, or None.
        published (str): H-SAM's published list that ``'hsam'`` stands for.
        train_cases (list[str]): the source's training cases.
        labelled (int | None), labelled_list (str | None): the explicit choices, which win.
        default_labelled (int): the number of cases used when the published list cannot be.
        error (type): the converter's exception class.

    Returns:
        tuple: ``(train_slices, labelled_cases)``: the list file in force (None when a source
        lacks the published list's cases, with a warning) and the cases it names, or None
        when the caller chooses the labelled cases itself.
    """
    if train_slices == 'hsam':
        absent = [c for c in read_slice_list(published, error)[1] if c not in train_cases]
        if absent:
            warnings.warn(f'{src} lacks the labelled case(s) {absent} of H-SAM\'s published '
                          'list, which cannot be used; training on every slice of the first '
                          f'{default_labelled if labelled is None else labelled} training '
                          'case(s) instead')
            return None, None
        train_slices = published
    if train_slices is None or labelled is not None or labelled_list is not None:
        return train_slices, None
    labelled_cases = read_slice_list(train_slices, error)[1]
    unknown = [c for c in labelled_cases if c not in train_cases]
    if unknown:
        raise error(f'slice list {train_slices} names case(s) {unknown} that are not training '
                    'cases of the source; pass --labelled N or --train-slices all')
    return train_slices, labelled_cases

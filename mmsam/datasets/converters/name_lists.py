"""Lists of names given to a converter: a user's list file, the labelled cases, slice names."""
import os.path as osp
from typing import Callable, List, Optional

from mmsam.datasets.io.data_root import slice_stem
from .errors import ConversionError


def read_name_list(path: str, what: str, item: str,
                   normalise: Optional[Callable[[str], str]] = None, repeats: str = 'error',
                   hint: str = '', error: type = ConversionError) -> List[str]:
    """Read a user list file: one name a line, blank lines and ``#`` comments skipped.

    Args:
        path (str): the list file.
        what (str): what the list is, starting messages, e.g. ``'case list'``.
        item (str): what one line names, e.g. ``'case'``.
        normalise (callable | None): maps a stripped line to a name; may raise ``error``.
        repeats (str): ``'error'`` refuses a name listed twice, ``'drop'`` keeps its first.
        hint (str): appended to the message when the file does not exist.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        list[str]: the names in file order (at least one).
    """
    if not osp.isfile(path):
        raise error(f'{what} {path} does not exist{hint}')
    try:
        with open(path) as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as err:
        raise error(f'cannot read {what} {path} ({err})') from err
    names = [normalise(line) if normalise else line
             for line in lines if line and not line.startswith('#')]
    if not names:
        raise error(f'{what} {path} lists no {item}s')
    if repeats == 'drop':
        return list(dict.fromkeys(names))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise error(f'{what} {path} repeats {item}(s) {repeated}')
    return names


def slice_names(case: str, depth: int) -> List[str]:
    """Names (file stems) of a case's ``depth`` training slices, see :func:`slice_stem`."""
    return [slice_stem(case, k) for k in range(depth)]


def choose_labelled(train_cases: List[str], labelled: int, labelled_list: Optional[str],
                    read_list: Callable[[str], List[str]], not_training: str,
                    error: type) -> List[str]:
    """Pick the labelled training cases: the first ``labelled``, or those in ``labelled_list``.

    Args:
        train_cases (list[str]): training cases in the order "first N" refers to.
        labelled (int): how many leading cases to take when no list is given.
        labelled_list (str | None): file of case names, all from ``train_cases``.
        read_list (callable): reads ``labelled_list`` into case names.
        not_training (str): how the message describes names outside ``train_cases``.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        list[str]: the labelled case names.
    """
    if labelled_list is not None:
        cases = read_list(labelled_list)
        unknown = [c for c in cases if c not in train_cases]
        if unknown:
            raise error(f'labelled list {labelled_list} names case(s) {unknown} that are '
                        f'{not_training}')
        return cases
    if not 1 <= labelled <= len(train_cases):
        raise error(f'--labelled {labelled}: choose 1 to {len(train_cases)} (the number of '
                    'training cases)')
    return list(train_cases[:labelled])

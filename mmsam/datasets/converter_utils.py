"""Helpers shared by the dataset converters in ``tools/dataset_converters/``.

A converter checks its source and destination with :func:`check_folders`, writes everything
inside ``with staged_output(dst) as tmp:`` (a temporary folder next to ``dst``, renamed to
``dst`` once complete and removed on any error), reads user list files with
:func:`read_name_list`, raises a subclass of :class:`ConversionError`, and runs its command
line through :func:`run_conversion`.
"""
import json
import os
import os.path as osp
import sys
import warnings

from mmsam.datasets.volume_io import META_FILE, slice_stem
from mmsam.utils.io import staged_output  # noqa: F401  (the converters import it from here)


class ConversionError(RuntimeError):
    """A source file or argument that the conversion cannot use; the message says what to do."""


def is_converter_output(folder, converter_name):
    """Tell whether ``folder`` holds a data root written by the converter ``converter_name``.

    Args:
        folder (str): the folder to look at.
        converter_name (str): the ``converter.name`` recorded in its ``meta.json``.

    Returns:
        bool: True when ``folder/meta.json`` names ``converter_name`` as its converter.
    """
    try:
        with open(osp.join(folder, META_FILE)) as f:
            return json.load(f).get('converter', {}).get('name') == converter_name
    except (OSError, ValueError, AttributeError):
        return False


def check_folders(src, dst, converter_name, overwrite=False, error=ConversionError):
    """Check that ``src`` is a folder and that ``dst`` may be written, before any work.

    ``dst`` may be missing or empty; a non-empty ``dst`` is replaced only with ``overwrite``
    and only when it holds an earlier output of this converter.

    Args:
        src (str): the source folder.
        dst (str): the output data root.
        converter_name (str): name of the converter, as recorded in its ``meta.json``.
        overwrite (bool): allow replacing a previous output of this converter.
        error (type): the converter's :class:`ConversionError` subclass to raise.

    Returns:
        tuple[str, str]: ``src`` and ``dst`` as absolute paths.
    """
    src, dst = osp.abspath(src), osp.abspath(dst)
    if not osp.isdir(src):
        raise error(f'source folder {src} does not exist')
    if osp.exists(dst) and not osp.isdir(dst):
        raise error(f'{dst} exists and is not a folder; choose another DST')
    if osp.isdir(dst) and os.listdir(dst):
        if not overwrite:
            raise error(f'{dst} exists and is not empty; pass --overwrite to replace a previous '
                        'conversion, or choose another DST')
        if not is_converter_output(dst, converter_name):
            raise error(f'{dst} is not empty and is not an output of this converter (no '
                        'meta.json of it); refusing to replace it')
    return src, dst


def read_name_list(path, what, item, normalise=None, repeats='error', hint='',
                   error=ConversionError):
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


def run_conversion(convert):
    """Run ``convert()`` for a command line: warnings and conversion errors as stderr lines.

    Args:
        convert (callable): runs the conversion; raises :class:`ConversionError` when it
            cannot be done.

    Returns:
        int: the exit status, 0 when done, 1 on a conversion error.
    """
    def show(message, category, filename, lineno, file=None, line=None):
        print(f'warning: {message}', file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter('always')
        warnings.showwarning = show
        try:
            convert()
        except ConversionError as err:
            print(f'error: {err}', file=sys.stderr)
            return 1
    return 0


def slice_names(case, depth):
    """Names (file stems) of a case's ``depth`` training slices, see :func:`slice_stem`."""
    return [slice_stem(case, k) for k in range(depth)]


def choose_labelled(train_cases, labelled, labelled_list, read_list, not_training, error):
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

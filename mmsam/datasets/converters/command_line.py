"""Running a converter from its command line: warnings and conversion errors as stderr lines."""
import sys
import warnings
from typing import Callable

from .errors import ConversionError


def run_conversion(convert: Callable[[], object]) -> int:
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

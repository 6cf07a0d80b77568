"""HDF5 (``.h5``) arrays of a data release, read with h5py."""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from mmsam.utils.limits import check_voxel_limit


def read_h5_arrays(path: str, keys: Sequence[str] = ('image', 'label'),
                   error: type = ValueError, expected: str = 're-download the file',
                   extra: Optional[Callable[[Any], Any]] = None
                   ) -> Tuple[Dict[str, np.ndarray], Any]:
    """Read whole datasets of an HDF5 file, checking each against the voxel limit first.

    Args:
        path (str): the ``.h5`` file.
        keys (sequence[str]): the datasets to read.
        error (type): exception class to raise.
        expected (str): what the file should hold and what to do, ending the message about a
            missing dataset.
        extra (callable, optional): called with the open ``h5py.File`` (e.g. to read
            attributes); its result is returned too.

    Returns:
        tuple: ``arrays`` (dict[str, ndarray]) and the result of ``extra`` (None without it).

    Raises:
        error: the file is unreadable, lacks a dataset, or a dataset is over the voxel limit.
    """
    import h5py

    def damaged(err):
        return error(f'cannot read {path} ({type(err).__name__}: {err}); the file is damaged or '
                     'not HDF5: re-download or re-extract it')

    failures = (OSError, ValueError, KeyError, TypeError)
    try:
        h5 = h5py.File(path, 'r')
    except failures as err:
        raise damaged(err) from err
    with h5:
        try:
            names = sorted(h5.keys())
            shapes = {key: tuple(h5[key].shape) for key in keys if key in h5}
        except failures as err:
            raise damaged(err) from err
        missing = [k for k in keys if k not in shapes]
        if missing:
            raise error(f'{path} lacks dataset(s) {missing} (it has {names}); {expected}')
        for key in keys:
            check_voxel_limit(shapes[key], f'{path}:{key}', error=error)
        try:
            arrays = {key: h5[key][()] for key in keys}
            return arrays, (extra(h5) if extra is not None else None)
        except failures as err:
            raise damaged(err) from err

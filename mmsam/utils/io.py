"""Writing files atomically: a temporary file in the target folder, then a rename, so an
interrupted run never leaves a half-written file that a later run would take for a good one."""
import contextlib
import os
import os.path as osp
import shutil
import tempfile

import numpy as np


def atomic_savez(path, **arrays):
    """Write ``arrays`` to ``path`` (an ``.npz``) via a temporary file and an atomic rename."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)), suffix='.tmp.npz')
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)), suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _swap_in(tmp, dst):
    """Rename the finished ``tmp`` to ``dst``, replacing an empty or previous ``dst``."""
    if osp.isdir(dst) and not os.listdir(dst):
        os.rmdir(dst)
    if not osp.exists(dst):
        os.rename(tmp, dst)
        return
    parent, base = osp.split(dst)
    old = tempfile.mkdtemp(prefix=f'.{base}.old-', dir=parent)
    os.rename(dst, osp.join(old, base))
    try:
        os.rename(tmp, dst)
    except BaseException:
        os.rename(osp.join(old, base), dst)  # put the previous output back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_output(dst):
    """Give a temporary folder next to ``dst`` that becomes ``dst`` when the block succeeds.

    On any error (interrupts included) the temporary folder is removed and ``dst`` is left
    as it was, so a failed conversion never leaves a half-written data root behind.

    Args:
        dst (str): absolute path of the output data root (checked beforehand).

    Returns:
        str: (yielded) path of the temporary folder to write into.
    """
    parent, base = osp.split(dst)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{base}.tmp-', dir=parent)
    try:
        yield tmp
        _swap_in(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

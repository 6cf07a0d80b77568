"""Writing files atomically: a temporary file in the target folder, then a rename, so an
interrupted run never leaves a half-written file that a later run would take for a good one."""
import os
import os.path as osp
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

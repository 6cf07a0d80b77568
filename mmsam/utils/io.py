"""Writing files atomically: a temporary file in the target folder, flushed and fsynced, then a
rename (and an fsync of the folder), so an interrupted run or a power cut never leaves a
half-written file under the final name that a later run would take for a good one.

Temporary files are named ``.<name>.tmp-<random>`` (hidden, in the target folder, so the rename
stays on one file system); :func:`remove_stale_temporaries` removes those a killed process
left behind."""
import contextlib
import os
import os.path as osp
import shutil
import tempfile

import numpy as np

TMP_MARK = '.tmp-'


def _fsync_dir(folder):
    """Makes a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temporary(path):
    """A new empty temporary file next to ``path``: (fd, tmp path)."""
    folder, base = osp.split(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{base}{TMP_MARK}')
    # mkstemp makes the file private (0600); the final file gets a plain open()'s permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
    """A file object writing to a temporary name that becomes ``path`` when the block succeeds.

    The data is flushed and fsynced before the rename; on any error (interrupts included) the
    temporary file is removed and ``path`` is left as it was.

    Args:
        path (str): the final file.
        mode (str): 'wb' or 'w'.

    Returns:
        file: (yielded) the open temporary file.
    """
    if mode not in ('wb', 'w'):
        raise ValueError(f'atomic_open: mode must be "wb" or "w", got {mode!r}')
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(osp.dirname(osp.abspath(path)))
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` via a fsynced temporary file and an atomic rename."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def atomic_write_png(path, array):
    """Write a uint8 (H, W) label map or (H, W, 3) RGB picture as PNG, atomically."""
    import cv2
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    ok, data = cv2.imencode('.png', np.ascontiguousarray(array))
    if not ok:
        raise OSError(f'cannot encode {path} as PNG (array {array.shape} {array.dtype})')
    atomic_write_bytes(path, data.tobytes())
    return path


def atomic_torch_save(obj, path):
    """``torch.save(obj)`` to ``path`` via a fsynced temporary file and an atomic rename."""
    import torch
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)


def remove_stale_temporaries(folder, name_glob='*'):
    """Removes the temporary files of interrupted atomic writes in ``folder``.

    Args:
        folder (str): where to look (not recursive).
        name_glob (str): the final names whose temporaries to remove, e.g. ``'*.pth'``.

    Returns:
        list[str]: the removed paths.
    """
    import glob
    removed = []
    for tmp in glob.glob(osp.join(glob.escape(folder), f'.{name_glob}{TMP_MARK}*')):
        try:
            os.remove(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed


def atomic_savez(path, **arrays):
    """Write ``arrays`` to ``path`` (an ``.npz``) via a temporary file and an atomic rename."""
    # np.savez_compressed appends '.npz' to a name without it; a file object keeps the name.
    with atomic_open(path, 'wb') as f:
        np.savez_compressed(f, **arrays)


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    with atomic_open(path, 'w') as f:
        f.write(text)


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


@contextlib.contextmanager
def staged_files(out_dir, tag='staged'):
    """Give a hidden staging folder inside ``out_dir``; when the block succeeds the files
    written there are fsynced and moved into ``out_dir`` (same names, replacing older ones),
    and the folder is fsynced. On any error they are removed and ``out_dir`` is unchanged.

    For a set of outputs written into a folder that holds other files too (a scan's label
    volumes and pictures, an ONNX export): none of them appears unless all are complete.

    Args:
        out_dir (str): the destination folder (created if missing).
        tag (str): part of the staging folder's name.

    Returns:
        str: (yielded) the staging folder.
    """
    os.makedirs(out_dir, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f'.{tag}{TMP_MARK}', dir=out_dir)
    try:
        yield stage
        names = sorted(os.listdir(stage))
        for name in names:
            fd = os.open(osp.join(stage, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for name in names:
            os.replace(osp.join(stage, name), osp.join(out_dir, name))
        _fsync_dir(out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

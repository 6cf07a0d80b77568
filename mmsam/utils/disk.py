"""Free-disk checks before writing something large (an embedding cache, a converted data set),
so that a run stops at the start with a message saying how much is needed, instead of failing
hours later on a full disk (or filling a disk other jobs share)."""
import os
import os.path as osp
import shutil

GiB = 1024 ** 3


def human_bytes(n):
    """``1.5 GiB``, ``12.0 MiB``, ``300 B``."""
    n = float(n)
    for unit, size in (('TiB', 1024 ** 4), ('GiB', GiB), ('MiB', 1024 ** 2), ('KiB', 1024)):
        if abs(n) >= size:
            return f'{n / size:.1f} {unit}'
    return f'{int(n)} B'


def _existing_parent(path):
    path = osp.abspath(path)
    while not osp.exists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def free_bytes(path):
    """Bytes available to this user on the file system that holds (or will hold) ``path``."""
    return shutil.disk_usage(_existing_parent(path)).free


def folder_bytes(folder):
    """Total size of the files under ``folder`` (recursive; links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(osp.join(root, name)).st_size
            except OSError:
                pass
    return total


def check_free_disk(path, needed, what, fix='', error=OSError):
    """Raise ``error`` when the file system of ``path`` has less than ``needed`` bytes free.

    Args:
        path (str): where the data will be written (may not exist yet).
        needed (int): bytes the write needs (an estimate is fine).
        what (str): what is written, for the message, e.g. ``'the embedding cache'``.
        fix (str): what to do besides freeing space, appended to the message.
        error (type): the exception class to raise (a converter passes its own).

    Returns:
        int: the free bytes.
    """
    free = free_bytes(path)
    if needed > free:
        raise error(f'not enough free disk space for {what} in {osp.abspath(path)}: it needs '
                    f'about {human_bytes(needed)}, {human_bytes(free)} are free; free some space'
                    f'{", " + fix if fix else ""}')
    return free

"""Generating a synthetic data root once: skip when complete and identical, else swap in anew."""
import contextlib
import json
import os
import os.path as osp
import shutil

from mmsam.utils.io import staged_output
from ..io.data_root import META_FILE

try:
    import fcntl
except ImportError:  # pragma: no cover  (not POSIX)
    fcntl = None


def read_meta_or_none(data_root):
    """``meta.json`` of ``data_root`` as a dict, or None when missing or unreadable."""
    try:
        with open(osp.join(data_root, META_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def written_by(meta, name):
    """Whether ``meta`` (from :func:`read_meta_or_none`) records the generator ``name``."""
    return isinstance(meta, dict) and isinstance(meta.get('generator'), dict) and \
        meta['generator'].get('name') == name


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created if needed) for the block."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_generated(data_root, generate, name, version, params, label):
    """Run ``generate`` for ``data_root`` unless it already holds the same generation.

    Nothing is written when ``meta.json`` records the same generator name, version and
    parameters. Otherwise ``generate(tmp, **params)`` writes into a fresh folder next to
    ``data_root`` that replaces it only when complete, so an interrupted run leaves the previous
    data root or none. Concurrent callers (e.g. one per distributed rank) are serialised by a
    lock file next to ``data_root``; a non-empty folder another program wrote is never replaced.

    Args:
        data_root (str): target folder.
        generate (callable): ``generate(folder, **params) -> meta`` writing ``meta.json`` last.
        name (str), version (int): the generator's identity recorded in ``meta.json``.
        params (dict): the generator's checked parameters.
        label (str): the data's name, for messages.

    Returns:
        dict: the meta data of the data root.
    """
    data_root = osp.abspath(data_root)
    want = dict(name=name, version=version, params=params)

    def up_to_date():
        meta = read_meta_or_none(data_root)
        return meta if written_by(meta, name) and meta['generator'] == want else None

    meta = up_to_date()
    if meta is not None:
        return meta
    parent, base = osp.split(data_root)
    os.makedirs(parent, exist_ok=True)
    with file_lock(osp.join(parent, f'.{base}.lock')):
        meta = up_to_date()  # another process may have generated it while we waited
        if meta is not None:
            return meta
        if osp.isdir(data_root) and os.listdir(data_root) and \
                not written_by(read_meta_or_none(data_root), name):
            raise FileExistsError(
                f'{data_root} exists and is not a {label} data root (no meta.json written by '
                f'{name}); refusing to replace it. Delete it or point data_root elsewhere.')
        for entry in os.listdir(parent):  # leftovers of crashed runs; we hold the lock
            if entry.startswith((f'.{base}.tmp-', f'.{base}.old-')):
                shutil.rmtree(osp.join(parent, entry), ignore_errors=True)
        with staged_output(data_root) as tmp:
            meta = generate(tmp, **params)
    return meta

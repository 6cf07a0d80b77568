"""Loading the checkpoints that mmengine's Runner writes, under torch's weights-only unpickler.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine 0.10.7 calls
``torch.load`` without the argument, so ``--resume``, ``load_from`` (``tools/test.py``) and
``init_model`` fail on the checkpoints mmengine itself saved: besides tensors they hold the
message hub's ``HistoryBuffer`` objects, numpy arrays, scalars and dtypes, and (because
``HistoryBuffer`` pickles its statistics methods with protocol 2) ``getattr(HistoryBuffer, 'min')``.

The mechanism chosen here keeps ``weights_only=True`` and widens torch's allow-list, only while
such a checkpoint is being loaded (``torch.serialization.safe_globals``), by exactly the globals
these checkpoints contain:

- ``HistoryBuffer`` (a plain data holder: arrays plus the names of its statistics methods);
- numpy's array / scalar reconstructors, ``numpy.dtype`` and the numeric, bool and string dtype
  classes (``numpy.dtypes.*DType``; object dtypes stay refused, so no pickled objects hide in
  arrays), under their numpy 2 names and, for files written with numpy 1, their old names;
- ``builtins.getattr`` mapped to :func:`_history_buffer_getattr`, which only returns
  ``HistoryBuffer``'s own statistics methods. The real ``getattr`` is not allowed: together with
  any allowed function it reaches ``__globals__`` and thus arbitrary code.

Rejected alternatives: ``weights_only=False`` for files under a work dir trusts a path rather
than the content (a copied or replaced ``.pth`` runs arbitrary code); patching ``torch.load`` or
mmengine's ``CheckpointLoader`` globally would also change how external weights load. With the
allow-list a checkpoint still cannot run code, so the same loader is safe to use for whatever
``load_from`` names, including official SAM/MedSAM files (plain tensors). Model code that loads
external weights calls ``torch.load(..., weights_only=True)`` itself and never sees these globals.

Used by :class:`mmsam.engine.MMSAMRunner` (``load_checkpoint``, hence ``resume`` and
``load_from``) and by :func:`load_checkpoint` below (for ``mmsam.apis.init_model``).
"""
import contextlib
import logging
import os
import os.path as osp
import pickle
import re
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import load_checkpoint as _mmengine_load_checkpoint

from mmsam.utils.io import atomic_write_bytes
from .config_errors import ConfigArgumentError

# Statistics methods HistoryBuffer registers by default (see HistoryBuffer._set_default_statistics).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')

# dtypes whose arrays and scalars a checkpoint may hold: bool, (unsigned) integers, floats and
# fixed-width strings. The object dtype is left out on purpose.
_NUMPY_DTYPE_CODES = ('?', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8',
                      'U', 'S')


def _history_buffer_getattr(obj, name: str):
    """Stands in for ``builtins.getattr`` while unpickling: fetches HistoryBuffer methods only.

    Args:
        obj: the object the pickle asks an attribute of; must be ``HistoryBuffer``.
        name (str): one of HistoryBuffer's default statistics methods.

    Returns:
        Callable: ``HistoryBuffer.<name>``.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed while loading an mmengine checkpoint; '
        f'only HistoryBuffer.{{{",".join(_HISTORY_BUFFER_METHODS)}}} are')


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """Numpy reconstructors and dtype classes, under the names numpy 1 and 2 pickle them with."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries: List[Union[Callable, Tuple[Callable, str]]] = [np.ndarray, np.dtype]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    # Under numpy >= 1.25 a dtype instance is of a per-dtype class (numpy.dtypes.Float64DType);
    # the unpickler only restores state into instances of allowed classes.
    entries.extend({type(np.dtype(code)) for code in _NUMPY_DTYPE_CODES} - {np.dtype})
    return entries


def mmengine_checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals mmengine Runner checkpoints contain beyond torch's default allow-list.

    Returns:
        list: entries for ``torch.serialization.safe_globals``.
    """
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr'), *_numpy_globals()]


@contextlib.contextmanager
def allow_mmengine_checkpoints(filename: Optional[str] = None) -> Iterator[None]:
    """Context in which ``torch.load`` (weights-only) accepts mmengine Runner checkpoints.

    An unpickling error about a global outside the allow-list is re-raised with a message that
    names the global (and the file) and says what to do.

    Args:
        filename (str, optional): the checkpoint being loaded, for the error message.
    """
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    # torch < 2.5 has no allow-list (and torch < 2.6 does not load weights-only by default).
    context = (safe_globals(mmengine_checkpoint_globals()) if safe_globals is not None
               else contextlib.nullcontext())
    try:
        with context:
            yield
    except pickle.UnpicklingError as e:
        match = re.search(r'Unsupported global: GLOBAL (\S+)', str(e))
        if match is None:
            raise
        what = f'The checkpoint {filename}' if filename else 'The checkpoint'
        raise pickle.UnpicklingError(
            f'{what} contains `{match.group(1)}`, which is neither a tensor nor one of '
            'the objects mmengine Runner checkpoints are known to hold (see '
            'mmsam/engine/checkpoint.py), so it is refused by the weights-only unpickler. If '
            'the file was written by this toolkit and this global is plain data, add it to '
            '`mmengine_checkpoint_globals()`; otherwise extract the state dict with '
            "`torch.load(path, weights_only=False)['state_dict']` only if you trust the file."
        ) from e


def load_checkpoint(model: torch.nn.Module,
                    filename: str,
                    map_location: Union[str, Callable, None] = 'cpu',
                    strict: bool = False,
                    logger=None,
                    revise_keys: Optional[list] = None) -> dict:
    """Loads a checkpoint (an mmengine Runner checkpoint or plain weights) into ``model``.

    Same as ``mmengine.runner.load_checkpoint`` but inside :func:`allow_mmengine_checkpoints`.

    Args:
        model (nn.Module): module to load the weights into.
        filename (str): local path or URL of the checkpoint.
        map_location (str | Callable | None): as for ``torch.load``. Defaults to 'cpu'.
        strict (bool): whether keys must match exactly. Defaults to False.
        logger: where mmengine reports missing/unexpected keys. Defaults to None.
        revise_keys (list, optional): ``(pattern, replacement)`` pairs applied to the keys.
            Defaults to stripping a leading ``module.``.

    Returns:
        dict: the loaded checkpoint.
    """
    if revise_keys is None:
        revise_keys = [(r'^module\.', '')]
    check_checkpoint_file(filename)
    with allow_mmengine_checkpoints(filename):
        return _mmengine_load_checkpoint(model, filename, map_location=map_location,
                                         strict=strict, logger=logger, revise_keys=revise_keys)


@contextlib.contextmanager
def checkpoint_must_fit(filename: str, config: str) -> Iterator[None]:
    """Turns mmengine's strict-loading error into one naming the checkpoint, config and fix.

    ``tools/test.py`` and :func:`mmsam.apis.init_model` load a trained checkpoint strictly: a
    checkpoint trained with other options (say ``--cfg-options
    model.decode_head.net_input=image``) would otherwise load partly and run with random
    weights wherever the shapes differ, with only a warning in the log.

    Args:
        filename (str): the checkpoint being loaded.
        config (str): the config (file name or description) the model was built from.
    """
    try:
        yield
    except RuntimeError as error:
        if 'do not match exactly' not in str(error):
            raise
        raise RuntimeError(
            f'checkpoint {filename} does not fit the model built from {config}:\n{error}\n'
            'Use the config the checkpoint was trained with, with the same --cfg-options '
            '(the run\'s work dir holds the full config it used).') from None


# --------------------------------------------------------------------------------------------
# Crash-safe writing, and telling intact checkpoints from damaged ones.
#
# mmengine's ``save_checkpoint`` serialises to memory and hands the bytes to a file backend's
# ``put``; its ``LocalBackend.put`` opens the final name and writes, so a run killed (or a disk
# filled) while writing leaves a truncated ``iter_N.pth`` that ``--resume`` would pick up. The
# backend below writes to a temporary name, fsyncs and renames. :class:`MMSAMRunner` passes
# it to every checkpoint it saves (the CheckpointHook's periodic and best checkpoints, and any
# ``runner.save_checkpoint`` call), and :class:`AtomicCheckpointHook` also writes
# ``last_checkpoint`` atomically: that is the one place where the toolkit's checkpoints are
# written. Other file writes of mmengine stay as they are.
# --------------------------------------------------------------------------------------------
ATOMIC_BACKEND = 'mmsam_atomic_local'
# Names CheckpointHook gives periodic checkpoints (its default filename_tmpl).
_NUMBERED = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
# What torch.save writes: a zip archive, or (old format) a pickle starting with this number.
_ZIP_MAGIC = b'PK\x03\x04'
_LEGACY_MAGIC = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put``/``put_text`` write atomically (temporary
    name in the same folder, flush, fsync, rename, fsync of the folder)."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(str(filepath), obj.encode(encoding))


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def atomic_backend_args(path: str, backend_args: Optional[dict] = None) -> Optional[dict]:
    """``backend_args`` that make mmengine write ``path`` atomically, where it is local.

    Args:
        path (str): the checkpoint file or folder.
        backend_args (dict, optional): what the caller asked for; kept when not None (a
            remote backend, or a user's choice).

    Returns:
        dict | None
    """
    if backend_args is not None or '://' in str(path):
        return backend_args
    return dict(backend=ATOMIC_BACKEND)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not an intact ``torch.save`` file, or None when it is.

    A zip-format file (torch >= 1.6) must have its central directory (it is written last, so a
    truncated file has none) and every member must pass its CRC check; this reads the file
    once but unpickles nothing. Files of torch's old format are only checked for their magic
    number (``torch.load`` still reports a truncated one).

    Args:
        path (str): a local file.

    Returns:
        str | None: e.g. ``'it is truncated (no zip central directory)'``.
    """
    import zipfile
    if not osp.isfile(path):
        return 'it does not exist'
    if osp.getsize(path) == 0:
        return 'it is empty (0 bytes)'
    with open(path, 'rb') as f:
        head = f.read(len(_LEGACY_MAGIC) + 2)
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            return f'it is truncated or damaged ({err})'
        if bad is not None:
            return f'its member {bad} fails the CRC check (damaged)'
        if not any(n.endswith('/data.pkl') or n == 'data.pkl' for n in names):
            return 'it is a zip file without data.pkl, not a torch checkpoint'
        return None
    if _LEGACY_MAGIC in head:
        return None
    return ('it is neither a zip-format nor a legacy torch checkpoint (the first bytes are '
            f'{head[:8]!r})')


def _step_of(path: str) -> Optional[int]:
    match = _NUMBERED.match(osp.basename(path))
    return int(match.group(2)) if match else None


def numbered_checkpoints(folder: str) -> List[str]:
    """The ``epoch_N.pth`` / ``iter_N.pth`` files in ``folder``, newest (largest N) first."""
    if not osp.isdir(folder):
        return []
    found = [osp.join(folder, n) for n in os.listdir(folder) if _NUMBERED.match(n)]
    return sorted(found, key=lambda p: (_step_of(p), osp.getmtime(p)), reverse=True)


def newest_intact_checkpoint(folder: str, exclude: Tuple[str, ...] = ()) -> Optional[str]:
    """The newest ``epoch_N.pth`` / ``iter_N.pth`` in ``folder`` that passes
    :func:`checkpoint_problem`, or None.

    Args:
        folder (str): where the CheckpointHook saved.
        exclude (tuple[str]): files already known to be damaged.
    """
    excluded = {osp.abspath(p) for p in exclude}
    for path in numbered_checkpoints(folder):
        if osp.abspath(path) not in excluded and checkpoint_problem(path) is None:
            return path
    return None


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or damaged; the message names it and the newest intact
    checkpoint next to it."""


def corrupt_checkpoint_message(path: str, problem: str) -> str:
    """The error text for a damaged ``path``: what is wrong and which checkpoint to use."""
    folder = osp.dirname(osp.abspath(path))
    newest = newest_intact_checkpoint(folder, exclude=(path,))
    if newest is None:
        fix = (f'there is no intact epoch_N.pth/iter_N.pth in {folder}: train from the start '
               '(without --resume) or point to another checkpoint')
    else:
        fix = (f'the newest intact checkpoint there is {newest}: resume with `--resume '
               f'{newest}` (or `--resume` alone, which skips damaged checkpoints), or load it '
               'with load_from')
    return (f'checkpoint {path} cannot be loaded: {problem} (e.g. the run was killed or the '
            f'disk filled up while it was being written, or the copy is incomplete); {fix}.')


class OfficialFormatError(ConfigArgumentError):
    """A checkpoint argument names an official, unconverted weight file or HuggingFace folder.

    A :class:`ConfigArgumentError` so that the tools that print argument errors as one line
    (tools/test.py, tools/infer.py) print this one too; the message names the converter.
    """


def _may_be_official(path: str) -> bool:
    """Whether ``path`` may be an official weight file: anything but a torch zip file whose
    pickle holds a ``state_dict`` entry (mmengine's and mmsam's own checkpoints). Reads only
    the (small) pickle of a zip file, never the tensors."""
    import zipfile
    if osp.isdir(path) or path.endswith(('.safetensors', '.bin')):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith('data.pkl')]
            return bool(pickles) and b'state_dict' not in archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError, KeyError):
        return False  # legacy or damaged files: the other checks report them


def check_official_format(path: str) -> None:
    """Raises :class:`OfficialFormatError` when ``path`` is an official file or HF folder.

    Official files (a HuggingFace ``save_pretrained`` folder or ``.safetensors``, a SAMed /
    H-SAM LoRA-only ``.pth`` with ``w_a_000`` keys, MaskSAM's nnU-Net checkpoint dict, a
    Probabilistic SAM or segment-anything-layout file) are not mmsam checkpoints: tools/test.py,
    tools/infer.py and ``load_from`` stop with the converter to run
    (``tools/model_converters/<name>2mmsam.py``, see
    :func:`mmsam.models.converters.detect.official_format_hint`) instead of calling the file
    damaged or loading none of its keys.

    Args:
        path (str): the checkpoint argument (file or folder).
    """
    if not path or '://' in str(path) or not osp.exists(path) or not _may_be_official(path):
        return
    from mmsam.models.converters.detect import official_format_hint
    hint = official_format_hint(path)
    if hint is not None:
        raise OfficialFormatError(f'checkpoint {hint}, and pass the converted .pth: it is not '
                                  'an mmsam checkpoint')


def check_checkpoint_file(path: str) -> None:
    """Raises :class:`OfficialFormatError` for an official, unconverted file or folder, and
    :class:`CorruptCheckpointError` when the local file ``path`` is damaged."""
    check_official_format(path)
    if '://' in str(path) or not osp.isfile(path):
        return  # URLs, and missing files (mmengine's own error names them)
    problem = checkpoint_problem(path)
    if problem is not None:
        raise CorruptCheckpointError(corrupt_checkpoint_message(path, problem))


def find_resume_checkpoint(work_dir: str, logger=None) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) continues from: the newest intact one.

    Reads ``<work_dir>/last_checkpoint`` as mmengine does; a damaged (or missing) file there,
    or a damaged checkpoint it names, is skipped with a warning for the newest intact
    numbered checkpoint in that folder. A newer intact numbered checkpoint than the one
    ``last_checkpoint`` names (a run killed between the two writes) is taken too: numbered
    checkpoints are ordered by their N.

    Args:
        work_dir (str): the run's work dir.
        logger: where the warning goes (default: mmengine's current logger).

    Returns:
        str | None: the checkpoint, or None when there is no intact one.
    """
    from mmengine.logging import print_log
    record = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip() or None
    if named is not None and '://' in named:
        return named  # a remote checkpoint: nothing to check here
    folder = osp.dirname(named) if named else work_dir
    candidates = numbered_checkpoints(folder)
    if named is not None and osp.abspath(named) not in map(osp.abspath, candidates):
        candidates.insert(0, named)  # a name outside filename_tmpl's pattern
    skipped = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if skipped:
                print_log(f'--resume: skipping damaged checkpoint(s) '
                          f'{"; ".join(f"{p} ({why})" for p, why in skipped)}; resuming from '
                          f'{path}, the newest intact one.', logger=logger or 'current',
                          level=logging.WARNING)
            return path
        skipped.append((path, problem))
    if skipped:
        print_log(f'--resume: no intact checkpoint in {folder} '
                  f'({", ".join(f"{p}: {why}" for p, why in skipped)}).',
                  logger=logger or 'current', level=logging.WARNING)
    return None

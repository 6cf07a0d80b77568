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
import pickle
import re
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import load_checkpoint as _mmengine_load_checkpoint

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

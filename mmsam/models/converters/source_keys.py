"""Reading an official weight file and accounting for every one of its keys.

A converter takes each key of the official file through a :class:`SourceKeys`: a key is
either used (``take``) or dropped with a reason (``drop``), and :meth:`SourceKeys.finish`
fails on any key left over, so a renamed or unknown key is named instead of silently ignored.
"""
import os.path as osp
import sys
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from mmsam.utils.io import atomic_torch_save


class ConversionError(ValueError):
    """An official file that does not fit the converter; the message names file and key."""


def read_weight_file(path: str) -> Dict[str, Tensor]:
    """Read a weight file as a flat dict of tensors, never unpickling anything but tensors.

    ``.safetensors`` files are read with the ``safetensors`` package, everything else with
    ``torch.load(weights_only=True)``.

    Args:
        path (str): the file.

    Returns:
        dict[str, Tensor]: its tensors (a ``{'state_dict': ...}`` wrapper is not unwrapped:
        official files are flat).
    """
    if not osp.isfile(path):
        raise ConversionError(f'{path} does not exist')
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ConversionError(f'{path} is a safetensors file; install the `safetensors` '
                                  'package to read it (pip install safetensors)') from err
        return load_file(path, device='cpu')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  torch raises many types for bad files
        raise ConversionError(f'cannot read {path} as a weights-only torch file: {err}') from err
    if not isinstance(obj, dict):
        raise ConversionError(f'{path} holds a {type(obj).__name__}, not a dict of tensors')
    return obj


class SourceKeys:
    """The keys of one official file, each to be used or dropped with a reason.

    Args:
        state (dict[str, Tensor]): the file's tensors.
        path (str): the file, named in messages.
    """

    def __init__(self, state: Dict[str, Tensor], path: str) -> None:
        self.state, self.path = dict(state), path
        self.used, self.dropped = set(), {}

    def __contains__(self, key):
        return key in self.state

    def keys(self, prefix: str = '') -> List[str]:
        """The file's keys starting with ``prefix``, in file order."""
        return [k for k in self.state if k.startswith(prefix)]

    def take(self, key: str, shape: Optional[Tuple[int, ...]] = None) -> Tensor:
        """The tensor under ``key``, marked as used.

        Args:
            key (str): the official key.
            shape (tuple[int], optional): the shape it must have.

        Returns:
            Tensor: the tensor.
        """
        if key not in self.state:
            raise ConversionError(f'{self.path} has no key {key!r}, which the converter needs; '
                                  'is it the file the converter is for (or was a key renamed)?')
        value = self.state[key]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ConversionError(f'{self.path}: key {key!r} has shape {tuple(value.shape)}, '
                                  f'expected {tuple(shape)}')
        self.used.add(key)
        return value

    def take_prefix(self, prefix: str) -> Dict[str, Tensor]:
        """Every ``prefix*`` key, marked as used: dict of (key without prefix) -> tensor."""
        keys = self.keys(prefix)
        if not keys:
            raise ConversionError(f'{self.path} has no {prefix!r}* keys, which the converter '
                                  'needs; is it the file the converter is for?')
        return {k[len(prefix):]: self.take(k) for k in keys}

    def drop(self, keys: Union[str, Iterable[str]], reason: str) -> None:
        """Mark ``keys`` (an iterable of keys, or a prefix string) as deliberately unused."""
        if isinstance(keys, str):
            keys = self.keys(keys)
        for key in keys:
            if key in self.state and key not in self.used:
                self.dropped.setdefault(reason, []).append(key)

    def finish(self) -> List[str]:
        """Fail on keys neither used nor dropped; return the drop report lines."""
        accounted = self.used | {k for keys in self.dropped.values() for k in keys}
        left = [k for k in self.state if k not in accounted]
        if left:
            shown = ', '.join(repr(k) for k in left[:10])
            more = f' (and {len(left) - 10} more)' if len(left) > 10 else ''
            raise ConversionError(f'{self.path} has keys the converter does not know: {shown}'
                                  f'{more}. A renamed or foreign key is not guessed at; '
                                  'check that the file is the official one for this converter')
        return [f'dropped {len(keys)} key(s) of {osp.basename(self.path)} ({reason}): '
                + ', '.join(keys[:3]) + (', ...' if len(keys) > 3 else '')
                for reason, keys in self.dropped.items()]


def load_into_model_strictly(model: nn.Module, state_dict: Dict[str, Tensor], source: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with the mismatches named.

    Args:
        model (nn.Module): the mmsam model built from the config.
        state_dict (dict[str, Tensor]): converted weights.
        source (str): where they came from, for the message.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = [f'{k}: converted {tuple(v.shape)} vs model {tuple(own[k].shape)}'
             for k, v in state_dict.items() if k in own and v.shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ConversionError(
            f'the weights converted from {source} do not fit the model built from the config: '
            f'missing {missing[:10]}, unexpected {unexpected[:10]}, shape mismatches '
            f'{wrong[:10]}. Use the config the converter printed (and its widths)')
    model.load_state_dict(state_dict, strict=True)


def run_conversion(out: str, overwrite: bool, convert: Callable[..., Tuple[dict, dict]],
                   *args, **kwargs) -> Tuple[dict, dict]:
    """The converter command lines' common steps: refuse an existing ``out`` unless
    ``overwrite``, run ``convert(*args, **kwargs)``, exit with ``error: ...`` on a
    :class:`ConversionError`, and print the conversion's report (every source key used or
    dropped, with its reason).

    Returns:
        tuple[dict, dict]: the converted state dict and the converter's summary.
    """
    if osp.exists(out) and not overwrite:
        sys.exit(f'error: {out} exists; pass --overwrite to replace it')
    try:
        state, summary, report = convert(*args, **kwargs)
    except ConversionError as err:
        sys.exit(f'error: {err}')
    for line in report:
        print(line)
    return state, summary


def save_converted(state_dict: Dict[str, Tensor], out: str, meta: dict) -> None:
    """Write an mmsam checkpoint (``state_dict`` + ``meta``) atomically.

    Args:
        state_dict (dict[str, Tensor]): the model's weights.
        out (str): the output ``.pth``.
        meta (dict): plain data (strings, numbers) saying where the weights came from.
    """
    atomic_torch_save(dict(state_dict=state_dict, meta=meta), out)

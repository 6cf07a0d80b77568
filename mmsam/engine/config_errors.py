"""Config errors that name the file, or the config key and the registered type.

Python reports a mistyped argument as ``BaseDecodeHead.__init__() got an unexpected keyword
argument 'typo'``: neither the config key nor the registered type the user wrote. The tools
run their builds inside :func:`config_argument_errors`, which maps such a ``TypeError`` back to
the config (``model.decode_head.typo: SAMedHead has no argument 'typo'``), and read configs
with :func:`load_config`, whose errors name the file.
"""
import difflib
import inspect
import os.path as osp
import re
from contextlib import contextmanager

from mmengine.config import Config
from mmengine.registry import Registry

from mmsam import registry

_UNEXPECTED = re.compile(r"^(?P<owner>[\w.<>]+)\.__init__\(\) got an unexpected keyword "
                         r"argument '(?P<arg>\w+)'$")
_MISSING = re.compile(r"^(?P<owner>[\w.<>]+)\.__init__\(\) missing \d+ required "
                      r"(?:positional |keyword-only )?arguments?: (?P<args>.+)$")
# mmsam's registries and their mmseg parents (a child's ``get`` also searches its parents).
_REGISTRIES = [value for value in vars(registry).values() if isinstance(value, Registry)]

class ConfigError(Exception):
    """A config that cannot be read or built; the message names the file or key."""


class ConfigArgumentError(ConfigError, TypeError):
    """A config dict that gives its registered type an argument it lacks, or lacks one it needs."""


def load_config(path):
    """Read a config file, with errors that name it.

    Args:
        path (str): the config file.

    Returns:
        Config: the config.

    Raises:
        ConfigError: the file (or a ``_base_`` file) does not exist or cannot be parsed.
    """
    if not osp.isfile(path):
        raise ConfigError(f'config {path}: no such file')
    try:
        return Config.fromfile(path)
    except FileNotFoundError as err:
        missing = err.filename or str(err)
        raise ConfigError(f'config {path}: {missing} (named in it, e.g. in _base_) does not '
                          'exist; _base_ paths are relative to the config file') from err
    except SyntaxError as err:
        where = err.filename if err.filename and not err.filename.startswith('<') else path
        raise ConfigError(f'config {path}: invalid Python in {where} line {err.lineno}: '
                          f'{err.msg}') from err


def _registered_classes(type_):
    """The classes a config ``type`` names in mmsam's registries (or their parents)."""
    if inspect.isclass(type_):
        return [type_]
    if not isinstance(type_, str):
        return []
    classes = []
    for reg in _REGISTRIES:
        try:
            cls = reg.get(type_)
        except Exception:  # a scope prefix of a package that is not installed, ...
            cls = None
        if inspect.isclass(cls) and cls not in classes:
            classes.append(cls)
    return classes


def _typed_dicts(node, path=''):
    """(key path, dict) of every dict with a ``type`` under ``node``, depth first."""
    if isinstance(node, dict):
        if 'type' in node:
            yield path, node
        for key, value in node.items():
            yield from _typed_dicts(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _typed_dicts(value, f'{path}.{index}' if path else str(index))


def argument_names(cls):
    """Keyword arguments ``cls(...)`` accepts, and whether that list is complete.

    Its ``__init__``'s and, through ``**kwargs``, those of the base classes it forwards to.

    Returns:
        tuple[list[str], bool]: the names, and False when some ``__init__`` on the way takes
        ``**kwargs`` that no base class's signature closes (any name may then be valid) or a
        signature cannot be read.
    """
    names = []
    for klass in cls.__mro__:
        if klass is object or '__init__' not in vars(klass):
            continue
        try:
            params = inspect.signature(klass.__init__).parameters.values()
        except (TypeError, ValueError):
            return list(dict.fromkeys(names)), False
        names += [p.name for p in params if p.name != 'self'
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return list(dict.fromkeys(names)), True
    return list(dict.fromkeys(names)), False


def accepted_arguments(cls):
    """Keyword arguments ``cls(...)`` accepts: its ``__init__``'s and, through ``**kwargs``,
    those of the base classes it forwards to (as far as signatures tell)."""
    return argument_names(cls)[0]


def registered_type_name(type_):
    return type_.__name__ if inspect.isclass(type_) else str(type_)


def explain_build_error(cfg, error):
    """Map a ``TypeError`` from building ``cfg``'s components to the config keys involved.

    Args:
        cfg (dict | Config): the config being built.
        error (TypeError): what the build raised.

    Returns:
        ConfigArgumentError | None: the error naming the key path(s) and registered type, or
        None when ``error`` is not about a config dict's arguments.
    """
    if isinstance(cfg, Config):
        cfg = dict(cfg.items())
    message = str(error).strip()
    unexpected, missing = _UNEXPECTED.match(message), _MISSING.match(message)
    if not (unexpected or missing):
        return None
    owner = (unexpected or missing).group('owner').split('.')[-1]
    if unexpected and owner == 'DataLoader':  # a loader dict has no type to search by
        from .dataloader_keys import dataloader_key_errors
        arg = unexpected.group('arg')
        messages = [m for m in dataloader_key_errors(cfg) if m.split(': ')[0].endswith(
            f'.{arg}')]
        return ConfigArgumentError('; '.join(messages)) if messages else None
    found = []
    for path, node in _typed_dicts(cfg):
        classes = [c for c in _registered_classes(node['type'])
                   if owner in [k.__name__ for k in c.__mro__]]
        if not classes:
            continue
        cls = classes[0]
        if unexpected and unexpected.group('arg') in node:
            found.append((path, node, cls))
        elif missing:
            args = re.findall(r"'(\w+)'", missing.group('args'))
            if args and not all(a in node for a in args):
                found.append((path, node, cls))
    if not found:
        return None
    path, node, cls = found[0]
    others = [p for p, _, _ in found[1:]]
    type_name = registered_type_name(node['type'])
    if unexpected:
        arg = unexpected.group('arg')
        accepted = accepted_arguments(cls)
        close = difflib.get_close_matches(arg, accepted, n=1)
        text = (f'{path}.{arg}: {type_name} has no argument {arg!r}'
                + (f' (did you mean {close[0]!r}?)' if close else '')
                + (f'; also in {", ".join(f"{p}.{arg}" for p in others)}' if others else '')
                + f'. {type_name} takes: {", ".join(accepted) or "no arguments"}')
    else:
        args = [a for a in re.findall(r"'(\w+)'", missing.group('args')) if a not in node]
        text = (f'{path}: {type_name} needs argument(s) {", ".join(map(repr, args))}, which '
                f'the config does not give'
                + (f' (nor in {", ".join(others)})' if others else ''))
    return ConfigArgumentError(text)


@contextmanager
def config_argument_errors(cfg):
    """Re-raise argument ``TypeError`` s of building ``cfg`` as :class:`ConfigArgumentError`.

    Other errors pass unchanged, and so does a ``TypeError`` that no config dict explains.

    Args:
        cfg (dict | Config): the config whose components are built inside the block.
    """
    try:
        yield
    except ConfigArgumentError:
        raise
    except TypeError as err:
        explained = explain_build_error(cfg, err)
        if explained is None:
            raise
        raise explained from err

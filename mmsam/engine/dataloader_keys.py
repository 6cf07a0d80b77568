"""Mistyped keys of ``train/val/test_dataloader`` found before the Runner builds anything.

mmengine's ``Runner.build_dataloader`` passes every key it does not use itself to
``torch.utils.data.DataLoader``, so ``train_dataloader.batch_szie=4`` surfaces only when
training starts, as a long traceback ending in ``DataLoader.__init__() got an unexpected
keyword argument 'batch_szie'``, which names neither the config key nor the right spelling.
:func:`check_dataloader_keys` checks each loader's keys, its sampler's and batch sampler's
arguments and its dataset's constructor arguments (wrapped datasets too) against what they
accept, and raises one :class:`ConfigArgumentError` naming the key and the close match.
"""
import difflib
import inspect

from torch.utils.data import DataLoader

from mmsam.registry import DATA_SAMPLERS, DATASETS
from .config_errors import ConfigArgumentError, registered_type_name, argument_names

# Keys Runner.build_dataloader (mmengine 0.10) takes out of the loader's dict itself; it passes
# the rest to DataLoader.
RUNNER_LOADER_KEYS = ('dataset', 'sampler', 'batch_sampler', 'num_batch_per_epoch',
                      'worker_init_fn', 'collate_fn')
# Arguments the Runner gives the sampler (and batch sampler) itself.
RUNNER_SAMPLER_ARGS = ('dataset', 'seed', 'sampler', 'batch_size')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def loader_arguments():
    """Keys a ``*_dataloader`` dict may hold: the Runner's own and DataLoader's arguments."""
    params = inspect.signature(DataLoader.__init__).parameters
    return list(RUNNER_LOADER_KEYS) + [name for name in params if name != 'self'
                                       and name not in RUNNER_LOADER_KEYS]


def _unknown(path, keys, accepted, owner):
    """Messages for the ``keys`` not in ``accepted``, each with its close match."""
    messages = []
    for key in keys:
        if key in accepted or key in ('type', '_scope_'):
            continue
        close = difflib.get_close_matches(key, accepted, n=1)
        messages.append(f'{path}.{key}: {owner} has no argument {key!r}'
                        + (f' (did you mean {close[0]!r}?)' if close else
                           f' ({owner} takes: {", ".join(accepted)})'))
    return messages


def _registered(registry, type_):
    """The class a config ``type`` names in ``registry`` (or its parents), else None."""
    if inspect.isclass(type_):
        return type_
    try:
        cls = registry.get(type_) if isinstance(type_, str) else None
    except Exception:  # a scope prefix of a package that is not installed, ...
        return None
    return cls if inspect.isclass(cls) else None


def _typed_node(path, node, registry, extra=()):
    """Messages for a ``type=...`` dict whose registered class has a closed argument list
    (an unknown type, or one taking any ``**kwargs``, is left to the build)."""
    cls = _registered(registry, node.get('type'))
    if cls is None:
        return []
    names, closed = argument_names(cls)
    if not closed:
        return []
    return _unknown(path, node.keys(), names + list(extra), registered_type_name(node['type']))


def _dataset_messages(path, node):
    """Messages for a dataset dict and the datasets it wraps (``dataset``/``datasets``)."""
    if not isinstance(node, dict):
        return []
    messages = _typed_node(path, node, DATASETS)
    inner = node.get('dataset')
    if isinstance(inner, dict):
        messages += _dataset_messages(f'{path}.dataset', inner)
    for index, item in enumerate(node.get('datasets') or []):
        messages += _dataset_messages(f'{path}.datasets.{index}', item)
    return messages


def dataloader_key_errors(cfg, loaders=LOADERS):
    """Messages for every mistyped key of the given loaders of ``cfg``.

    Args:
        cfg (Config | dict): the run's config.
        loaders (Sequence[str]): e.g. ``('train_dataloader', 'val_dataloader')``.

    Returns:
        list[str]: ``'<key path>: <owner> has no argument <key> (did you mean <match>?)'``.
    """
    accepted = loader_arguments()
    messages = []
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue  # absent, None, or an already built DataLoader
        messages += _unknown(loader, loader_cfg.keys(), accepted, 'the data loader')
        for key in ('sampler', 'batch_sampler'):
            node = loader_cfg.get(key)
            if isinstance(node, dict):
                messages += _typed_node(f'{loader}.{key}', node, DATA_SAMPLERS,
                                        RUNNER_SAMPLER_ARGS)
        messages += _dataset_messages(f'{loader}.dataset', loader_cfg.get('dataset'))
    return messages


def check_dataloader_keys(cfg, loaders=LOADERS):
    """Raise :class:`ConfigArgumentError` (one line) if a loader key of ``cfg`` is mistyped.

    Args:
        cfg (Config | dict): the run's config.
        loaders (Sequence[str]): the loaders the run builds.

    Raises:
        ConfigArgumentError: naming each wrong key path and its close match, e.g.
            ``train_dataloader.batch_szie: the data loader has no argument 'batch_szie'
            (did you mean 'batch_size'?)``.
    """
    messages = dataloader_key_errors(cfg, loaders)
    if messages:
        raise ConfigArgumentError('; '.join(messages))

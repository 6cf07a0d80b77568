"""Checking a run's prerequisites (data, weight files) before its Runner is built.

mmengine's Runner creates the work dir and its ``<timestamp>/`` log folder when it is built and
reads data and weights later, one at a time: a run missing its data root and its SAM weights
fails on the first, leaves an empty log folder behind, and reports the second only on the
next try. ``tools/train.py`` and ``tools/test.py`` call :func:`check_prerequisites` first, which
reports every missing prerequisite in one message and creates nothing.
"""
import os.path as osp

from mmsam.registry import DATASETS
from .checkpoint import check_official_format
from .config_errors import ConfigError
from .dataloader_keys import check_dataloader_keys

# Loaders each kind of run builds.
_LOADERS = dict(train=('train_dataloader', 'val_dataloader'), test=('test_dataloader', ))


class PrerequisiteError(ConfigError):
    """Files a run needs are missing; the message lists each of them and where it is set."""


def _typed_dicts(node, path):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _typed_dicts(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _typed_dicts(value, f'{path}.{index}')


def weight_files(cfg):
    """The weight files a training run reads: ``checkpoint`` keys under ``model`` (SAM parts,
    ``init_cfg``) and ``load_from``.

    Returns:
        dict[str, list[str]]: local path -> the config keys naming it (URLs are left out).
    """
    files = {}
    for path, node in _typed_dicts(cfg.get('model', {}), 'model'):
        value = node.get('checkpoint')
        if isinstance(value, str) and value and '://' not in value:
            files.setdefault(value, []).append(f'{path}.checkpoint')
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and load_from and '://' not in load_from:
        files.setdefault(load_from, []).append('resume' if cfg.get('resume') else 'load_from')
    return files


def _builds(cfg, loader):
    """Whether the run builds ``loader``: val_cfg=dict() turns validation on, only a
    missing/None val_cfg turns it off."""
    return bool(cfg.get(loader)) and not (loader == 'val_dataloader' and
                                          cfg.get('val_cfg') is None)


def _generated(dataset_cfg):
    """Whether a dataset config is generated on first use (synthetic data: never missing)."""
    return any('generator' in node for _, node in _typed_dicts(dataset_cfg, 'dataset'))


def missing_data(cfg, mode):
    """Messages of the datasets of ``mode`` ('train': train + val, 'test') that cannot be built
    (missing or unreadable files), each with the loaders that use it. Generated (synthetic)
    datasets are not built here: they are made on first use.

    Returns:
        list[str]: one message per distinct problem.
    """
    problems = {}
    for loader in _LOADERS[mode]:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or not _builds(cfg, loader):
            continue
        dataset_cfg = loader_cfg.get('dataset')
        if not dataset_cfg or _generated(dataset_cfg):
            continue
        try:
            DATASETS.build(dataset_cfg)
        except (OSError, ValueError) as err:  # mmsam's datasets name the file and the fix
            problems.setdefault(str(err), []).append(f'{loader}.dataset')
    return [f'data ({", ".join(keys)}): {message}' for message, keys in problems.items()]


def check_prerequisites(cfg, mode='train', checkpoints=()):
    """Raise one error listing every missing prerequisite of a run, before anything is created.

    Args:
        cfg (Config): the run's config (after ``--cfg-options``).
        mode (str): 'train' (train and val data, the model's weight files and ``load_from``)
            or 'test' (test data; the model's SAM weights are not read: the checkpoint holds
            every weight).
        checkpoints (Sequence[tuple[str, str]]): more (what, path) files, e.g.
            ``[('checkpoint', args.checkpoint)]`` for tools/test.py.

    Raises:
        ConfigArgumentError: a mistyped key of a loader the run builds (checked first), or
            (``OfficialFormatError``) a checkpoint or ``load_from`` that is an official file to
            convert first.
        PrerequisiteError: with one line per missing file or data root.
    """
    if mode not in _LOADERS:
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    # a mistyped loader key would otherwise surface only when the Runner builds that loader
    check_dataloader_keys(cfg, [loader for loader in _LOADERS[mode] if _builds(cfg, loader)])
    # an official file or HuggingFace folder: the converter to run, not "no such file"
    for _, path in checkpoints:
        check_official_format(path)
    if mode == 'train' and isinstance(cfg.get('load_from'), str):
        check_official_format(cfg.load_from)
    missing = [f'{what} {path}: no such file' for what, path in checkpoints
               if '://' not in str(path) and not osp.isfile(path)]
    sam_weights = False
    if mode == 'train':
        for path, keys in weight_files(cfg).items():
            if not osp.isfile(path):
                missing.append(f'weight file {path} ({", ".join(keys)}): no such file')
                sam_weights |= any(k.startswith('model.') for k in keys)
    missing += missing_data(cfg, mode)
    if not missing:
        return
    config = f'config {cfg.filename}: ' if getattr(cfg, 'filename', None) else ''
    lines = [f'{config}{len(missing)} prerequisite{"s are" if len(missing) > 1 else " is"} '
             'missing, nothing was started:'] + [f'  - {m}' for m in missing]
    if sam_weights:
        from mmsam.models.utils.sam_checkpoint import SAM_CHECKPOINT_HELP
        lines.append(SAM_CHECKPOINT_HELP)
    raise PrerequisiteError('\n'.join(lines))

"""The Runner the tools build: mmengine's, with fixes for this stack and a quieter console.

- Loading its own checkpoints works on torch >= 2.6 (weights-only ``torch.load``), see
  :mod:`mmsam.engine.checkpoint`. ``resume`` and ``load_from`` both go through
  :meth:`MMSAMRunner.load_checkpoint`.
- Checkpoints are crash-safe: every checkpoint it saves is written to a temporary name,
  fsynced and renamed (:meth:`MMSAMRunner.save_checkpoint`), ``last_checkpoint`` too (a
  config's ``CheckpointHook`` is built as :class:`AtomicCheckpointHook`); loading a truncated
  or damaged checkpoint stops with a message naming it and the newest intact one, and
  automatic resume skips damaged checkpoints (:func:`find_resume_checkpoint`).
- ``--launcher pytorch`` works on machines without CUDA (gloo, DDP without ``device_ids``), see
  :mod:`mmsam.engine.distributed`.
- The full config and the hook list (some 400 lines) go to the log file only; the console
  gets one line saying where the config is (``tools/train.py --print-config`` prints it).
- A run that fails before it completes an iteration leaves no ``<timestamp>/`` folder (and no
  config dump or work dir it created) behind.

Everything else is mmengine's ``Runner``. A config may still name another runner with
``runner_type``; the tools then build that one instead.
"""
import logging
import os
import os.path as osp
import shutil
from typing import Callable, Dict, Optional, Union

from mmengine.dist import is_distributed, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import Runner
from torch import nn

from mmsam.registry import RUNNERS
from mmsam.utils.warning_filters import KnownLogWarningFilter
from .checkpoint import (CorruptCheckpointError, allow_mmengine_checkpoints,
                         atomic_backend_args, check_checkpoint_file, corrupt_checkpoint_message,
                         find_resume_checkpoint)
from .hooks.atomic_checkpoint_hook import AtomicCheckpointHook
from .distributed import init_dist, model_wrapper_cfg_for_device, revert_sync_batchnorm_without_cuda


# Messages mmengine's Runner logs at start that the console does not show (the log file does).
FILE_ONLY_MESSAGES = ('Config:\n', 'Hooks will be executed in the following order')


class FileOnlyFilter(logging.Filter):
    """Drops the Runner's config dump and hook list from a console handler."""

    def filter(self, record):
        message = record.msg if isinstance(record.msg, str) else ''
        return not message.startswith(FILE_ONLY_MESSAGES)


class _IterationDoneHook(Hook):
    """Records that the run completed an iteration (train, val or test): it has started."""

    priority = 'HIGHEST'  # before any other hook's after_*_iter can fail

    def __init__(self):
        self.done = False

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.done = True

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.done = True

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.done = True


@RUNNERS.register_module()
class MMSAMRunner(Runner):
    """mmengine's Runner that loads its own checkpoints on torch >= 2.6, runs DDP on CPU, keeps
    the config dump off the console and removes the folders of runs that never started."""

    def __init__(self, *args, **kwargs):
        work_dir = kwargs.get('work_dir', args[1] if len(args) > 1 else None)
        work_dir = osp.abspath(work_dir) if isinstance(work_dir, str) else None
        self._created = dict(work_dir=work_dir is not None and not osp.exists(work_dir),
                             entries=set(os.listdir(work_dir)) if work_dir and
                             osp.isdir(work_dir) else set())
        self._iteration_done = _IterationDoneHook()
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._remove_unstarted_run(work_dir)
            raise
        self.register_hook(self._iteration_done)

    def _remove_unstarted_run(self, work_dir=None):
        """Removes what building and starting this run created: its ``<timestamp>/`` folder,
        the config dump and the work dir, where they did not exist before."""
        if not is_main_process():
            return
        work_dir = getattr(self, '_work_dir', None) or work_dir
        logger = getattr(self, 'logger', None)
        log_dir = getattr(self, '_log_dir', None)
        for handler in list(getattr(logger, 'handlers', [])):
            if isinstance(handler, logging.FileHandler) and log_dir and \
                    osp.abspath(handler.baseFilename).startswith(osp.abspath(log_dir) + os.sep):
                handler.close()
                logger.removeHandler(handler)
        if log_dir and osp.isdir(log_dir):
            shutil.rmtree(log_dir, ignore_errors=True)
            # mmengine hands a visualizer of the same name (the configs' 'visualizer') to the
            # next Runner of this process, still saving into the folder just removed.
            visualizer = getattr(self, 'visualizer', None)
            backends = getattr(visualizer, '_vis_backends', {}) or {}
            if any(str(getattr(b, '_save_dir', '')).startswith(osp.abspath(log_dir))
                   for b in backends.values()):
                type(visualizer)._instance_dict.pop(visualizer.instance_name, None)
        if not work_dir or not osp.isdir(work_dir):
            return
        for entry in set(os.listdir(work_dir)) - self._created['entries']:
            path = osp.join(work_dir, entry)
            if entry.endswith('.py') and osp.isfile(path):  # the config dump
                os.remove(path)
        if self._created['work_dir'] and not os.listdir(work_dir):
            os.rmdir(work_dir)

    def discard_if_unstarted(self):
        """After a failure: removes this run's ``<timestamp>/`` folder (and the config dump and
        work dir it created) unless it completed an iteration. The tools call it when a step
        between building the Runner and running it fails (e.g. loading the checkpoint)."""
        if not self._iteration_done.done:
            self._remove_unstarted_run()

    def _run_or_clean(self, run):
        try:
            return run()
        except BaseException:
            self.discard_if_unstarted()
            raise

    def train(self) -> nn.Module:
        """mmengine's ``train``; a run failing before its first iteration leaves no folder."""
        return self._run_or_clean(super().train)

    def val(self) -> dict:
        """mmengine's ``val``; a run failing before its first iteration leaves no folder."""
        return self._run_or_clean(super().val)

    def test(self) -> dict:
        """mmengine's ``test``; a run failing before its first iteration leaves no folder."""
        return self._run_or_clean(super().test)

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        """mmengine's logger, whose console handlers leave out the config dump and hook list,
        without mmengine's notices about its own internals (``mmsam.utils.warning_filters``).

        Args:
            log_level (int | str): level of the handlers.
            log_file (str, optional): default ``<log dir>/<timestamp>.log``.
            **kwargs: ``MMLogger`` arguments.

        Returns:
            MMLogger: the logger.
        """
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and \
                    not isinstance(handler, logging.FileHandler) and \
                    not any(isinstance(f, FileOnlyFilter) for f in handler.filters):
                handler.addFilter(FileOnlyFilter())
        if not any(isinstance(f, KnownLogWarningFilter) for f in logger.filters):
            logger.addFilter(KnownLogWarningFilter())
        return logger

    def _log_env(self, env_cfg: Dict) -> None:
        """mmengine's environment and config log, plus a line saying where the config is."""
        super()._log_env(env_cfg)
        if self.cfg._cfg_dict:
            name = (osp.basename(self.cfg.filename) if self.cfg.filename is not None else
                    f'{self.timestamp}.py')
            self.logger.info(f'Config: {osp.join(self.work_dir, name)} (in full in the log '
                             f'file {osp.join(self.log_dir, self.timestamp + ".log")}; '
                             'tools/train.py and tools/test.py print it with --print-config)')

    def setup_env(self, env_cfg: Dict) -> None:
        """Creates the process group (gloo without CUDA) before mmengine's environment setup.

        Args:
            env_cfg (dict): the config's ``env_cfg``.
        """
        if self.distributed and not is_distributed():
            init_dist(self.launcher, **env_cfg.get('dist_cfg', {}))
        # mmengine skips its own init_dist now that the process group exists.
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg: Optional[Dict], model: nn.Module) -> nn.Module:
        """Wraps the model as mmengine does, with DDP ``device_ids=None`` without CUDA.

        Args:
            model_wrapper_cfg (dict, optional): the config's ``model_wrapper_cfg``.
            model (nn.Module): model to wrap.

        Returns:
            nn.Module: the model, wrapped in a distributed run.
        """
        if self.distributed:
            model_wrapper_cfg = model_wrapper_cfg_for_device(
                model_wrapper_cfg, self.cfg.get('find_unused_parameters', False))
            model = revert_sync_batchnorm_without_cuda(model)
        return super().wrap_model(model_wrapper_cfg, model)

    def register_hook(self, hook, priority=None) -> None:
        """mmengine's ``register_hook``; mmengine's ``CheckpointHook`` becomes
        :class:`AtomicCheckpointHook` (same arguments and behaviour, atomic ``last_checkpoint``).

        Args:
            hook (Hook | dict): the hook or its config.
            priority (int | str, optional): as for mmengine.
        """
        if isinstance(hook, dict) and self._is_plain_checkpoint_hook(hook.get('type')):
            hook = dict(hook, type=AtomicCheckpointHook)
        elif type(hook) is CheckpointHook:
            hook.__class__ = AtomicCheckpointHook  # a subclass without state of its own
        super().register_hook(hook, priority=priority)

    @staticmethod
    def _is_plain_checkpoint_hook(hook_type) -> bool:
        if hook_type is CheckpointHook:
            return True
        if not isinstance(hook_type, str):
            return False
        from mmsam.registry import HOOKS
        try:
            return HOOKS.get(hook_type) is CheckpointHook
        except KeyError:
            return False

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args=None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """mmengine's ``save_checkpoint``, writing a local file atomically (temporary name,
        fsync, rename), so a run killed while saving leaves the previous checkpoints intact
        and no truncated file under a checkpoint's name.

        Args: as for ``mmengine.runner.Runner.save_checkpoint``.
        """
        if file_client_args is None:
            backend_args = atomic_backend_args(out_dir, backend_args)
        super().save_checkpoint(out_dir, filename, file_client_args=file_client_args,
                                save_optimizer=save_optimizer,
                                save_param_scheduler=save_param_scheduler, meta=meta,
                                by_epoch=by_epoch, backend_args=backend_args)

    def load_or_resume(self) -> None:
        """mmengine's ``load_or_resume``; an automatic resume (``resume=True`` without
        ``load_from``) starts from the newest intact checkpoint, skipping damaged ones."""
        if not self._has_loaded and self._resume and self._load_from is None:
            latest = find_resume_checkpoint(self.work_dir, logger=self.logger)
            if latest is None:
                self.logger.info(f'No intact checkpoint in {self.work_dir} to resume from: '
                                 'training from the start.')
                self._resume = False
            else:
                self._load_from = latest
        return super().load_or_resume()

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):  # noqa: B006 (mmengine's)
        """Loads a checkpoint into the model; mmengine checkpoints pass the weights-only check.

        Args:
            filename (str): local path or URL of the checkpoint.
            map_location (str | Callable): as for ``torch.load``. Defaults to 'cpu'.
            strict (bool): whether keys must match exactly. Defaults to False.
            revise_keys (list): ``(pattern, replacement)`` pairs applied to the keys.

        Returns:
            dict: the loaded checkpoint.
        """
        check_checkpoint_file(filename)
        try:
            with allow_mmengine_checkpoints(filename):
                return super().load_checkpoint(filename, map_location=map_location,
                                               strict=strict, revise_keys=revise_keys)
        except (EOFError, RuntimeError) as err:
            # A damaged file the zip check cannot see (old format, a broken pickle inside).
            if isinstance(err, CorruptCheckpointError) or not _looks_damaged(err):
                raise
            raise CorruptCheckpointError(corrupt_checkpoint_message(
                filename, f'torch.load failed: {err}')) from err


def _looks_damaged(err: BaseException) -> bool:
    """Whether ``torch.load``'s error says the file is cut short or damaged."""
    text = str(err)
    return isinstance(err, EOFError) or any(m in text for m in (
        'PytorchStreamReader failed', 'failed finding central directory', 'Ran out of input',
        'invalid load key', 'unexpected EOF'))


def build_runner(cfg):
    """mmsam's runner for ``cfg``, unless the config names another one with ``runner_type``."""
    if 'runner_type' not in cfg:
        return MMSAMRunner.from_cfg(cfg)
    return RUNNERS.build(cfg)

"""Distributed runs on machines without CUDA (gloo), with mmengine's behaviour kept on GPUs.

mmengine 0.10.7 assumes CUDA in two places of a ``--launcher pytorch`` run: ``init_dist`` calls
``torch.cuda.set_device(local_rank)`` before creating the process group (with the config's
``nccl`` backend), and ``Runner.wrap_model`` builds DDP with ``device_ids=[local_rank]``. Without
CUDA, :func:`init_dist` creates a gloo process group and skips ``set_device``, and
:func:`model_wrapper_cfg_for_device` returns a ``model_wrapper_cfg`` with ``device_ids=None``
(the CPU form of DDP). When CUDA is available both return what mmengine would do, unchanged.

:class:`mmsam.engine.MMSAMRunner` calls them from ``setup_env`` and ``wrap_model``, so
``tools/train.py``, ``tools/test.py`` and ``tools/dist_*.sh`` need no device-specific code.
"""
import copy
import datetime
from typing import Optional

import torch
from mmengine.dist import init_dist as _mmengine_init_dist
from mmengine.logging import print_log
from torch import distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel

CPU_BACKEND = 'gloo'


def cuda_available() -> bool:
    """Whether this process can use a CUDA device."""
    return torch.cuda.is_available()


def init_dist(launcher: str, backend: str = 'nccl', **kwargs) -> None:
    """Initialises the default process group, also on machines without CUDA.

    Args:
        launcher (str): 'pytorch', 'slurm' or 'mpi'.
        backend (str): backend the config asks for; replaced by gloo without CUDA.
        **kwargs: the rest of ``env_cfg.dist_cfg`` (``timeout`` in seconds, ``init_backend``,
            other ``init_process_group`` arguments).
    """
    if cuda_available():
        _mmengine_init_dist(launcher, backend=backend, **kwargs)
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA (mmengine sets a CUDA device for it). On a '
            'machine without CUDA, launch with torchrun, e.g. `bash tools/dist_train.sh CONFIG '
            'NPROC`, which uses --launcher pytorch and the gloo backend.')
    init_backend = kwargs.pop('init_backend', 'torch')
    if init_backend != 'torch':
        raise RuntimeError(f"env_cfg.dist_cfg.init_backend='{init_backend}' needs CUDA; "
                           "use 'torch' on a machine without CUDA.")
    timeout = kwargs.get('timeout')
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    if backend != CPU_BACKEND:
        print_log(f"CUDA is not available: using the '{CPU_BACKEND}' distributed backend "
                  f"instead of '{backend}'.", logger='current')
    # RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT come from torchrun (env:// init).
    torch_dist.init_process_group(backend=CPU_BACKEND, **kwargs)


def destroy_process_group() -> None:
    """Tears the default process group down, if there is one, before the process exits.

    Left to interpreter shutdown, gloo's communication threads can still be alive when the
    group is destroyed, and a rank whose work is done aborts ("terminate called without an
    active exception"), failing a finished ``torchrun`` job. The tools call this last.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def model_wrapper_cfg_for_device(model_wrapper_cfg: Optional[dict],
                                 find_unused_parameters: bool = False) -> Optional[dict]:
    """The ``model_wrapper_cfg`` to wrap a model with in a distributed run on this machine.

    Args:
        model_wrapper_cfg (dict, optional): the config's ``model_wrapper_cfg``.
        find_unused_parameters (bool): the config's ``find_unused_parameters``, used when
            ``model_wrapper_cfg`` is None (as mmengine does). Defaults to False.

    Returns:
        dict | None: ``model_wrapper_cfg`` unchanged with CUDA; without CUDA a copy (or the
        mmengine default wrapper) whose DDP ``device_ids`` is None.
    """
    if cuda_available():
        return model_wrapper_cfg
    if model_wrapper_cfg is None:
        # The wrapper mmengine builds when the config has no model_wrapper_cfg.
        return dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                    find_unused_parameters=find_unused_parameters, device_ids=None)
    model_wrapper_cfg = copy.deepcopy(model_wrapper_cfg)
    wrapper_type = model_wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    if isinstance(wrapper_type, str):
        from mmsam.registry import MODEL_WRAPPERS
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel):
        if model_wrapper_cfg.get('device_ids') is not None:
            print_log(f"CUDA is not available: ignoring model_wrapper_cfg.device_ids="
                      f"{model_wrapper_cfg['device_ids']}.", logger='current')
        model_wrapper_cfg['device_ids'] = None
    return model_wrapper_cfg


def revert_sync_batchnorm_without_cuda(model: torch.nn.Module) -> torch.nn.Module:
    """Replaces SyncBN layers by BN when CUDA is unavailable (SyncBN only runs on GPUs).

    Args:
        model (nn.Module): the model about to be wrapped for a distributed run.

    Returns:
        nn.Module: ``model`` itself with CUDA; otherwise with per-process BN statistics.
    """
    if cuda_available():
        return model
    if any(isinstance(m, torch.nn.SyncBatchNorm) or type(m).__name__ == 'SyncBatchNorm'
           for m in model.modules()):
        from mmengine.model import revert_sync_batchnorm
        print_log('CUDA is not available: SyncBN layers become BN layers (statistics per '
                  'process).', logger='current')
        model = revert_sync_batchnorm(model)
    return model

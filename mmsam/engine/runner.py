"""The Runner the tools build: mmengine's, with two fixes for this stack.

- Loading its own checkpoints works on torch >= 2.6 (weights-only ``torch.load``), see
  :mod:`mmsam.engine.checkpoint`. ``resume`` and ``load_from`` both go through
  :meth:`MMSAMRunner.load_checkpoint`.
- ``--launcher pytorch`` works on machines without CUDA (gloo, DDP without ``device_ids``), see
  :mod:`mmsam.engine.distributed`.

Everything else is mmengine's ``Runner``. A config may still name another runner with
``runner_type``; the tools then build that one instead.
"""
from typing import Callable, Dict, Optional, Union

from mmengine.dist import is_distributed
from mmengine.runner import Runner
from torch import nn

from mmsam.registry import RUNNERS
from .checkpoint import allow_mmengine_checkpoints
from .distributed import init_dist, model_wrapper_cfg_for_device, revert_sync_batchnorm_without_cuda


@RUNNERS.register_module()
class MMSAMRunner(Runner):
    """mmengine's Runner that loads its own checkpoints on torch >= 2.6 and runs DDP on CPU."""

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
        with allow_mmengine_checkpoints(filename):
            return super().load_checkpoint(filename, map_location=map_location, strict=strict,
                                           revise_keys=revise_keys)


def build_runner(cfg):
    """mmsam's runner for ``cfg``, unless the config names another one with ``runner_type``."""
    if 'runner_type' not in cfg:
        return MMSAMRunner.from_cfg(cfg)
    return RUNNERS.build(cfg)

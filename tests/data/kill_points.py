"""Test helper: a hook that SIGKILLs its own training process at a chosen point.

Imported by the kill-and-resume test's configs (``custom_imports``). ``MMSAM_TEST_KILL`` says
where, one of:

- ``train_iter:N``: in training iteration N (1-based), after the forward pass and the loss,
  before backward and the optimizer step;
- ``cache_store:N``: while the N-th embedding-cache entry of this process is being written
  (half of its bytes are in the temporary file);
- ``checkpoint:NAME``: while the checkpoint file NAME (e.g. ``iter_4.pth``) is being written
  (half of its bytes are in the temporary file).

Nothing happens when the variable is unset. With ``MMSAM_TEST_KILL_RANK=R`` only the process
of rank R (``$RANK``, set by torchrun) dies.
"""
import io
import os
import signal

import torch
from mmengine.hooks import Hook

from mmsam.registry import HOOKS
from mmsam.utils.io import atomic_open

ENV = 'MMSAM_TEST_KILL'


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _write_half_and_die(data, path):
    with atomic_open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        _die()


@HOOKS.register_module()
class KillPointHook(Hook):
    """SIGKILLs the process at the point ``$MMSAM_TEST_KILL`` names (see the module)."""

    priority = 'VERY_HIGH'

    def __init__(self):
        kind, _, arg = os.environ.get(ENV, '').partition(':')
        only_rank = os.environ.get(f'{ENV}_RANK')
        if only_rank is not None and only_rank != os.environ.get('RANK', '0'):
            kind = ''
        self.kind, self.arg = kind, arg
        if kind == 'cache_store':
            self._patch_cache_store(int(arg))
        elif kind == 'checkpoint':
            self._patch_checkpoint_write(arg)
        elif kind not in ('', 'train_iter'):
            raise ValueError(f'{ENV}={os.environ[ENV]!r}: unknown kill point')

    @staticmethod
    def _patch_cache_store(n):
        from mmsam.engine import embedding_cache
        real, calls = embedding_cache.atomic_torch_save, [0]

        def save(obj, path):
            calls[0] += 1
            if calls[0] == n:
                buffer = io.BytesIO()
                torch.save(obj, buffer)
                _write_half_and_die(buffer.getvalue(), path)
            real(obj, path)

        embedding_cache.atomic_torch_save = save

    @staticmethod
    def _patch_checkpoint_write(name):
        from mmsam.engine.checkpoint import AtomicLocalBackend
        real = AtomicLocalBackend.put

        def put(self, obj, filepath):
            if os.path.basename(str(filepath)) == name:
                _write_half_and_die(obj, str(filepath))
            real(self, obj, filepath)

        AtomicLocalBackend.put = put

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.kind == 'train_iter' and runner.iter + 1 == int(self.arg):
            # After the forward pass and the loss, before backward and the optimizer step.
            runner.optim_wrapper.update_params = lambda *args, **kwargs: _die()

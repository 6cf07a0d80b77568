"""mmengine's CheckpointHook with ``last_checkpoint`` written atomically and stale temporaries
of killed runs removed; the checkpoints themselves are written atomically by the Runner."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmsam.registry import HOOKS
from mmsam.utils.io import atomic_write_text, remove_stale_temporaries


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """CheckpointHook whose ``last_checkpoint`` file is never half-written.

    :class:`mmsam.engine.MMSAMRunner` builds this hook wherever a config asks for mmengine's
    ``CheckpointHook`` (same arguments), so configs need not name it. The ``.pth`` files go
    through :meth:`MMSAMRunner.save_checkpoint`, which writes them atomically. Before training
    it removes the temporary files a killed run left in the checkpoint folder.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and '://' not in str(self.out_dir):
            for folder in {osp.abspath(self.out_dir), osp.abspath(runner.work_dir)}:
                removed = remove_stale_temporaries(folder, '*.pth')
                removed += remove_stale_temporaries(folder, 'last_checkpoint')
                if removed:
                    runner.logger.info('AtomicCheckpointHook: removed temporary file(s) of an '
                                       f'interrupted checkpoint write: {", ".join(removed)}')

    def _save_checkpoint_with_step(self, runner, step, meta):
        # mmengine 0.10.7's CheckpointHook._save_checkpoint_with_step, except for the last
        # line: mmengine writes last_checkpoint with a plain open(), which a kill can leave
        # empty.
        if self.max_keep_ckpts > 0:
            if len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step:
                pass
            else:
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    _step = self.keep_ckpt_ids.popleft()
                    if is_main_process():
                        ckpt_path = self.file_backend.join_path(
                            self.out_dir, self.filename_tmpl.format(_step))
                        if self.file_backend.isfile(ckpt_path):
                            self.file_backend.remove(ckpt_path)
                        elif self.file_backend.isdir(ckpt_path):
                            self.file_backend.rmtree(ckpt_path)
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)

"""Exponential decay of the stage-1 loss weight of multi-stage heads (H-SAM's lambda_w)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsam.registry import HOOKS
from ..schedulers.stage_loss_weight import stage_loss_weight


@HOOKS.register_module()
class StageLossWeightHook(Hook):
    """Sets ``model.decode_head.<attribute>`` before every training iteration to
    ``w(e) = 1 - (1 - start) ** ((1 - decay) ** e)`` with e the current epoch.

    w(0) = start, and w decays towards 0 ever more slowly. H-SAM's supplementary (Table 8):
    start 0.4, decay 0.01, giving w(300) = 0.025 ("from 0.4 to 0 in 300 epochs"); its main
    text: start 0.8 with coefficient 0.005. In iteration-based training e counts passes over
    the training set (iterations // iterations per epoch).

    Args:
        start (float): w at epoch 0, in [0, 1].
        decay (float): decay coefficient, in [0, 1).
        attribute (str): the head attribute to set.
    """

    priority = 'NORMAL'

    def __init__(self, start=0.4, decay=0.01, attribute='stage1_weight'):
        if not 0 <= start <= 1:
            raise ValueError(f'StageLossWeightHook start must be in [0, 1], got {start}')
        if not 0 <= decay < 1:
            raise ValueError(f'StageLossWeightHook decay must be in [0, 1), got {decay}')
        self.start, self.decay, self.attribute = start, decay, attribute

    def weight_at(self, epoch):
        """w at ``epoch`` (float)."""
        return stage_loss_weight(epoch, self.start, self.decay)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        head = model.decode_head
        if not hasattr(head, self.attribute):
            raise AttributeError(f'StageLossWeightHook: {type(head).__name__} has no '
                                 f'{self.attribute!r}; use it with a multi-stage head')
        epoch = runner.iter // max(len(runner.train_dataloader), 1)
        setattr(head, self.attribute, self.weight_at(epoch))

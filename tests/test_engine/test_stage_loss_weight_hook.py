"""StageLossWeightHook inside an mmengine Runner: the head sees w(epoch) at every iteration."""
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmsam.engine.hooks import StageLossWeightHook


class _Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage1_weight = -1.0


class _Recorder(BaseModel):
    """Records decode_head.stage1_weight at each training forward."""

    def __init__(self):
        super().__init__()
        self.decode_head = _Head()
        self.param = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.seen.append(self.decode_head.stage1_weight)
        return dict(loss=((self.param - inputs.float().mean()) ** 2).sum())


class _Numbers(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        return dict(inputs=torch.tensor([float(index)]))


def test_hook_sets_the_weight_of_the_current_epoch_before_each_iteration(tmp_path):
    model = _Recorder()
    runner = Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Numbers(), batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        custom_hooks=[dict(type='StageLossWeightHook', start=0.4, decay=0.01)],
        default_hooks=dict(checkpoint=None, logger=None), default_scope='mmsam')
    runner.train()
    # 3 iterations per epoch; the official trainer's weight: 1 - 0.6 ** (0.99 ** epoch)
    expected = [1 - 0.6 ** (0.99 ** epoch) for epoch in range(3) for _ in range(3)]
    assert model.seen == pytest.approx(expected)
    assert model.seen[0] == pytest.approx(0.4)


def test_hook_names_a_head_without_the_attribute(tmp_path):
    hook = StageLossWeightHook(attribute='missing')
    model = _Recorder()
    runner = Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Numbers(), batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=1), custom_hooks=[hook],
        default_hooks=dict(checkpoint=None, logger=None), default_scope='mmsam')
    with pytest.raises(AttributeError, match="'missing'"):
        runner.train()


def test_weight_schedules_of_the_paper():
    supplementary = StageLossWeightHook(start=0.4, decay=0.01)
    assert supplementary.weight_at(300) == pytest.approx(1 - 0.6 ** (0.99 ** 300))
    assert supplementary.weight_at(300) < 0.03  # "from 0.4 to 0 in 300 epochs"
    main_text = StageLossWeightHook(start=0.8, decay=0.005)
    assert main_text.weight_at(0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match='start'):
        StageLossWeightHook(start=1.5)

"""PolyLRAfterWarmup with LinearLR reproduces the official SAMed / H-SAM learning rate."""
import pytest
import torch
from mmengine.optim.scheduler import LinearLR

from mmsam.registry import PARAM_SCHEDULERS


def _rates(warmup, max_iters, horizon):
    base = 0.005
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=base)
    schedulers = [
        LinearLR(optimizer, start_factor=1 / warmup, by_epoch=False, begin=0, end=warmup),
        PARAM_SCHEDULERS.build(dict(type='PolyLRAfterWarmup', optimizer=optimizer,
                                    warmup_iters=warmup, end=max_iters // 10, power=0.9,
                                    horizon=horizon, by_epoch=True,
                                    convert_to_iter_based=True, epoch_length=10))]
    rates = []
    for _ in range(max_iters):
        rates.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    return base, rates


def test_official_rule_after_warmup():
    """trainer.py: lr = base * (1 - (i - warmup) / max_iterations) ** 0.9 once i >= warmup."""
    warmup, max_iters = 25, 200
    base, rates = _rates(warmup, max_iters, 'total')
    assert rates[0] == pytest.approx(base / warmup)
    assert rates[warmup - 1] < base
    for i in range(warmup, max_iters):
        assert rates[i] == pytest.approx(base * (1 - (i - warmup) / max_iters) ** 0.9), i
    assert rates[warmup] == pytest.approx(base)  # the decay starts from the base rate


def test_remaining_horizon_reaches_zero():
    warmup, max_iters = 25, 200
    base, rates = _rates(warmup, max_iters, 'remaining')
    assert rates[warmup] == pytest.approx(base)
    assert rates[-1] == pytest.approx(base * (1 / (max_iters - warmup)) ** 0.9)


def test_bad_arguments():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match='horizon'):
        PARAM_SCHEDULERS.build(dict(type='PolyLRAfterWarmup', optimizer=optimizer,
                                    warmup_iters=5, end=10, horizon='half'))
    with pytest.raises(ValueError, match='warmup_iters'):
        PARAM_SCHEDULERS.build(dict(type='PolyLRAfterWarmup', optimizer=optimizer,
                                    warmup_iters=-1, end=10))
    with pytest.warns(UserWarning, match='never starts'):  # a run shorter than its warm-up
        PARAM_SCHEDULERS.build(dict(type='PolyLRAfterWarmup', optimizer=optimizer,
                                    warmup_iters=50, end=10))

"""mmsam.engine.distributed: DDP without device ids on CPU, mmengine's behaviour with CUDA."""
import pytest
import torch

from mmsam.engine.distributed import (model_wrapper_cfg_for_device,
                                      revert_sync_batchnorm_without_cuda)

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason='tests the path without CUDA')


@cpu_only
def test_default_wrapper_without_cuda_has_no_device_ids():
    cfg = model_wrapper_cfg_for_device(None, find_unused_parameters=True)
    assert cfg == dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                       find_unused_parameters=True, device_ids=None)


@cpu_only
def test_config_wrapper_without_cuda_drops_device_ids():
    original = dict(type='MMDistributedDataParallel', device_ids=[0], broadcast_buffers=True)
    cfg = model_wrapper_cfg_for_device(original)
    assert cfg == dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=True)
    assert original['device_ids'] == [0]  # the config itself is left alone


@cpu_only
def test_non_ddp_wrapper_is_left_alone():
    cfg = model_wrapper_cfg_for_device(dict(type='MMFullyShardedDataParallel'))
    assert 'device_ids' not in cfg


@cpu_only
def test_syncbn_becomes_bn_without_cuda():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.SyncBatchNorm(2))
    model = revert_sync_batchnorm_without_cuda(model)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    assert isinstance(model[1], torch.nn.modules.batchnorm._BatchNorm)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_with_cuda_mmengine_behaviour_is_kept():
    cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    assert model_wrapper_cfg_for_device(cfg) is cfg
    assert model_wrapper_cfg_for_device(None) is None

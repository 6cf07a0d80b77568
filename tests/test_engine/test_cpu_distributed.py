"""mmsam.engine.distributed: DDP without device ids on CPU, mmengine's behaviour with CUDA."""
import pytest
import torch

from mmsam.engine.distributed import (model_wrapper_cfg_for_device,
                                      revert_sync_batchnorm_without_cuda)

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason='tests the path without CUDA')


@cpu_only
def test_default_wrapper_without_cuda_wraps_a_cpu_model_and_trains(tmp_path):
    """The default wrapper's config builds mmengine's DDP around a CPU model in a real
    (one-process gloo) group, which DDP refuses with any ``device_ids``, and its gradients
    are the unwrapped model's."""
    import torch.distributed as dist

    from mmsam.registry import MODEL_WRAPPERS
    cfg = model_wrapper_cfg_for_device(None, find_unused_parameters=True)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    try:
        torch.manual_seed(0)
        model, x = torch.nn.Linear(4, 2), torch.randn(3, 4)
        reference = torch.nn.Linear(4, 2)
        reference.load_state_dict(model.state_dict())
        wrapper = MODEL_WRAPPERS.build(dict(cfg, module=model))
        assert wrapper.find_unused_parameters and not wrapper.broadcast_buffers
        wrapper(x).sum().backward()
        reference(x).sum().backward()
        torch.testing.assert_close(model.weight.grad, reference.weight.grad)
        with pytest.raises(ValueError, match='device_ids'):
            MODEL_WRAPPERS.build(dict(cfg, module=torch.nn.Linear(4, 2), device_ids=[0]))
    finally:
        dist.destroy_process_group()


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

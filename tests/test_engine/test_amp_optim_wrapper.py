"""mmsam's AmpOptimWrapper: mixed-precision training steps on CPU, through mmengine's builder."""
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import build_optim_wrapper
from conftest import load_script

from mmsam.engine import AmpOptimWrapper
from mmsam.models import SAMImageEncoder

TINY = dict(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), patch_size=8,
            window_size=4, out_chans=16)


def lora_encoder():
    torch.manual_seed(0)
    enc = SAMImageEncoder(arch=TINY, img_size=64, adapter=dict(type='LoRA', rank=2))
    with torch.no_grad():  # lora_b starts at 0: give lora_a a gradient from the first step
        for name, p in enc.named_parameters():
            if 'lora_b' in name:
                p.normal_(0, 0.1)
    return enc


def build(model, **kwargs):
    cfg = dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.5), **kwargs)
    return build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('dtype', [None, 'bfloat16', 'float16'])
def test_amp_step_on_cpu_autocasts_and_updates(dtype):
    model = lora_encoder()
    # a small fixed fp16 scale: the dynamic default (65536) overflows and skips the first step
    wrapper = build(model, dtype=dtype, loss_scale=16.0 if dtype == 'float16' else 'dynamic')
    # the config name resolves to mmsam's wrapper (no GPU assert), still an mmengine one
    assert type(wrapper) is AmpOptimWrapper
    assert isinstance(wrapper, MMEngineAmpOptimWrapper)
    seen = []
    model.blocks[0].attn.qkv.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = model.blocks[0].attn.qkv.weight.detach().clone()
    x = torch.randn(2, 3, 64, 64)
    with wrapper.optim_context(model):
        (out,) = model(x)
        loss = (out.float() * torch.randn_like(out, dtype=torch.float32)).sum()
    wrapper.update_params(loss)
    expected = torch.float16 if dtype == 'float16' else torch.bfloat16
    assert seen == [expected]
    assert wrapper.cast_dtype == expected
    # fp16 scales the loss; bf16 needs no scaling
    assert wrapper.loss_scaler.is_enabled() == (dtype == 'float16')
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert not torch.equal(p, before[name]), f'{name} was not updated'
            assert p.dtype == torch.float32  # master weights stay fp32
    assert torch.equal(model.blocks[0].attn.qkv.weight, frozen)


def test_amp_state_dict_round_trip():
    model = lora_encoder()
    wrapper = build(model, dtype='float16', loss_scale=512.)
    with wrapper.optim_context(model):
        (out,) = model(torch.randn(1, 3, 64, 64))
    wrapper.update_params(out.float().sum())
    state = wrapper.state_dict()
    assert 'loss_scaler' in state
    other = build(model, dtype='float16', loss_scale=512.)
    other.load_state_dict(state)
    assert other.loss_scaler.get_scale() == wrapper.loss_scaler.get_scale()


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="dtype='float64'"):
        build(nn.Linear(2, 2), dtype='float64')


def load_tool(name):
    return load_script(f'tools/{name}.py')


def test_train_amp_flags_set_the_wrapper():
    train = load_tool('train')
    parser, args = train.parse_args(['cfg.py', '--amp', '--amp-dtype', 'float16'])
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=1))))
    train.enable_amp(cfg, parser, args.amp_dtype)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16'
    wrapper = build_optim_wrapper(nn.Linear(2, 2), cfg.optim_wrapper)
    assert type(wrapper) is AmpOptimWrapper
    with pytest.raises(SystemExit):
        train.main(['cfg.py', '--amp-dtype', 'bfloat16'])  # --amp-dtype without --amp


def test_inference_autocast_for_test_tool():
    from mmsam.engine import autocast_for
    enc = lora_encoder().eval()
    x = torch.randn(1, 3, 64, 64)
    seen = []
    enc.blocks[1].mlp.lin1.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with torch.no_grad():
        (fp32,) = enc(x)
        with autocast_for('cpu'):  # bf16 by default on CPU
            (bf16,) = enc(x)
    assert seen == [torch.float32, torch.bfloat16]
    assert ((bf16.float() - fp32).norm() / fp32.norm()) < 1e-2
    with pytest.raises(ValueError, match="'float64'"):
        with autocast_for('cpu', 'float64'):
            pass
    test = load_tool('test')
    _, args = test.parse_args(['cfg.py', 'ckpt.pth', '--amp'])
    assert args.amp and args.amp_dtype is None

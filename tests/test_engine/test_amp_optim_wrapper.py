"""mmsam's AmpOptimWrapper: mixed-precision training steps on CPU, through mmengine's builder."""
import logging
import re

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import build_optim_wrapper
from conftest import load_script

from mmsam.engine import AmpOptimWrapper
from mmsam.engine import amp
from mmsam.models import SAMImageEncoder
from mmsam.utils import collect_env

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


@pytest.fixture
def fake_cpu(monkeypatch):
    """Fakes the CPU's native bf16 (``'AMX'``, ``'AVX512-BF16'`` or None, then capability
    AVX2) and records amp.py's log lines as (level, message); each test starts unlogged."""
    logs = []
    monkeypatch.setattr(amp, '_logged', set())
    monkeypatch.setattr(amp, 'print_log',
                        lambda msg, logger=None, level=None: logs.append((level, msg)))

    def fake(kind):
        monkeypatch.setattr(collect_env, 'cpu_bf16_kind', lambda flags=None: kind)
        monkeypatch.setattr(collect_env, 'cpu_capability', lambda flags=None: kind or 'AVX2')
        return logs
    return fake


@pytest.fixture
def native_bf16(fake_cpu):
    """A CPU with AMX: the CPU default dtype is bf16 (the tests below check bf16 numerics)."""
    return fake_cpu('AMX')


def build(model, **kwargs):
    cfg = dict(type='AmpOptimWrapper', optimizer=dict(type='SGD', lr=0.5), **kwargs)
    return build_optim_wrapper(model, cfg)


@pytest.mark.parametrize('dtype', [None, 'bfloat16', 'float16'])
def test_amp_step_on_cpu_autocasts_and_updates(dtype, native_bf16):
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


def test_inference_autocast_for_test_tool(native_bf16):
    from mmsam.engine import autocast_for
    enc = lora_encoder().eval()
    x = torch.randn(1, 3, 64, 64)
    seen = []
    enc.blocks[1].mlp.lin1.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with torch.no_grad():
        (fp32,) = enc(x)
        with autocast_for('cpu'):  # bf16 by default on a CPU with native bf16
            (bf16,) = enc(x)
    assert seen == [torch.float32, torch.bfloat16]
    assert ((bf16.float() - fp32).norm() / fp32.norm()) < 1e-2
    with pytest.raises(ValueError, match="'float64'"):
        with autocast_for('cpu', 'float64'):
            pass
    test = load_tool('test')
    _, args = test.parse_args(['cfg.py', 'ckpt.pth', '--amp'])
    assert args.amp and args.amp_dtype is None


@pytest.mark.parametrize('kind', ['AMX', 'AVX512-BF16'])
def test_native_bf16_cpu_defaults_to_bf16_silently(fake_cpu, kind):
    logs = fake_cpu(kind)
    assert amp.default_amp_dtype('cpu') == 'bfloat16'
    assert amp.resolve_amp_dtype(None, 'cpu') == torch.bfloat16
    assert amp.resolve_amp_dtype('bfloat16', 'cpu') == torch.bfloat16
    assert amp.default_amp_dtype('cuda') == 'float16'
    assert logs == []


def test_cpu_without_native_bf16_keeps_fp32_and_says_so_once(fake_cpu):
    logs = fake_cpu(None)
    assert amp.default_amp_dtype('cpu') == 'float32'
    assert amp.default_amp_dtype('cuda') == 'float16'  # the GPU is not the CPU's business
    assert amp.resolve_amp_dtype(None, 'cpu') == torch.float32
    assert amp.resolve_amp_dtype(None, 'cpu') == torch.float32
    (level, message), = logs  # one line per process, not one per step
    assert level == logging.INFO
    assert 'AVX2' in message and 'float32' in message and '--amp-dtype bfloat16' in message


def test_explicit_bf16_on_such_a_cpu_runs_with_the_measured_slowdown(fake_cpu):
    logs = fake_cpu(None)
    assert amp.resolve_amp_dtype('bfloat16', 'cpu') == torch.bfloat16
    assert amp.resolve_amp_dtype(torch.bfloat16, 'cpu') == torch.bfloat16
    (level, message), = logs
    assert level == logging.WARNING
    assert 'AVX2' in message and amp.EMULATED_BF16_SLOWDOWN in message
    assert re.search(r'\d\.\dx', message), 'the warning gives the measured slowdown'
    assert amp.resolve_amp_dtype('float16', 'cpu') == torch.float16  # asked for: no fp32 note
    assert len(logs) == 1


def test_autocast_for_without_native_bf16_runs_fp32(fake_cpu):
    from mmsam.engine import autocast_for
    enc = lora_encoder().eval()
    x = torch.randn(1, 3, 64, 64)
    seen = []
    enc.blocks[1].mlp.lin1.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    fake_cpu(None)
    with torch.no_grad():
        (plain,) = enc(x)
        with autocast_for('cpu'):
            (amp_out,) = enc(x)
        with autocast_for('cpu', 'bfloat16'):
            enc(x)
    assert seen == [torch.float32, torch.float32, torch.bfloat16]
    assert torch.equal(plain, amp_out)
    fake_cpu('AVX512-BF16')
    with torch.no_grad(), autocast_for('cpu'):
        enc(x)
    assert seen[-1] == torch.bfloat16


def test_amp_wrapper_default_on_cpu_without_native_bf16_trains_in_fp32(fake_cpu):
    logs = fake_cpu(None)
    model = lora_encoder()
    wrapper = build(model)  # what tools/train.py --amp builds (dtype None)
    seen = []
    model.blocks[0].attn.qkv.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    for _ in range(2):
        with wrapper.optim_context(model):
            (out,) = model(torch.randn(1, 3, 64, 64))
        wrapper.update_params(out.sum())
    assert seen == [torch.float32] * 2 and wrapper.cast_dtype == torch.float32
    assert not wrapper.loss_scaler.is_enabled()
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert len(logs) == 1 and 'AVX2' in logs[0][1]


def test_cpu_bf16_kind_reads_cpuinfo_flags_and_torch(monkeypatch, tmp_path):
    for name in ('_is_amx_tile_supported', '_is_avx512_bf16_supported'):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX2')
    assert collect_env.cpu_bf16_kind({'avx2', 'fma'}) is None
    assert collect_env.cpu_capability({'avx2', 'fma'}) == 'AVX2'
    assert collect_env.cpu_bf16_kind({'avx512f', 'avx512_bf16'}) == 'AVX512-BF16'
    assert collect_env.cpu_capability({'avx512_bf16', 'amx_bf16', 'amx_tile'}) == 'AMX'
    # a VM may hide flags from /proc/cpuinfo that CPUID (torch's query) still reports
    monkeypatch.setattr(torch.cpu, '_is_amx_tile_supported', lambda: True, raising=False)
    assert collect_env.cpu_bf16_kind(set()) == 'AMX'
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nmodel name\t: AMD EPYC  7B13\nflags\t\t: avx2\n')
    assert collect_env.cpu_model_name(str(info)) == 'AMD EPYC 7B13'

"""benchmark.py's config-free modes and training_memory.py, on a tiny SAM architecture."""
import json

import pytest
from conftest import load_script

TINY_ARCH = json.dumps(dict(embed_dim=64, depth=2, num_heads=4, global_attn_indexes=[1],
                            patch_size=8, window_size=3))


def load_tool(name):
    return load_script(f'tools/analysis_tools/{name}.py')


def test_encoder_mode_compares_with_segment_anything(capsys):
    """Same weights in both encoders (windowed with padding: an 8 x 8 grid in 3 x 3 windows,
    and a global block): fused fp32 matches segment-anything, bf16 is bf16-close."""
    benchmark = load_tool('benchmark')
    results = benchmark.main(['--mode', 'encoder', '--arch', TINY_ARCH, '--img-size', '64',
                              '--dtype', 'fp32', 'bf16', '--device', 'cpu', '--repeats', '1',
                              '--impls', 'fused', 'reference'])
    out = capsys.readouterr().out
    assert 'first call s' in out and 'TFLOP/s' in out
    from mmsam.utils.collect_env import cpu_capability, cpu_model_name
    header = out.splitlines()[0]  # the CPU is named before anything is timed
    assert header.startswith(f'CPU: {cpu_model_name()}, {cpu_capability()}')
    assert 'load average at the end' in out
    assert set(results) == {(name, dt) for name in ('segment-anything', 'mmsam fused',
                                                    'mmsam reference')
                            for dt in ('fp32', 'bf16')}
    assert results[('mmsam fused', 'fp32')]['max_abs'] < 1e-4
    assert results[('mmsam reference', 'fp32')]['max_abs'] == 0  # the very same module
    assert 1e-5 < results[('mmsam fused', 'bf16')]['rel_l2'] < 2e-2  # bf16 really ran
    assert results[('segment-anything', 'fp32')]['speedup'] == 1


def test_encoder_mode_times_each_forced_kernel(capsys):
    """--kernels gives a row per fused kernel, each equal to segment-anything in fp32 (the
    tiny grid's global block is 8 x 8: only a forced 'masked' runs the masked kernel)."""
    benchmark = load_tool('benchmark')
    results = benchmark.main(['--mode', 'encoder', '--arch', TINY_ARCH, '--img-size', '64',
                              '--dtype', 'fp32', '--device', 'cpu', '--repeats', '1',
                              '--kernels', 'sdpa', 'masked', 'matmul', '--clock', 'cpu'])
    assert 'cpu time' in capsys.readouterr().out
    names = {name for name, _ in results}
    assert names == {'segment-anything', 'mmsam fused (sdpa)', 'mmsam fused (masked)',
                     'mmsam fused (matmul)'}
    for name in names:
        assert results[(name, 'fp32')]['max_abs'] < 1e-4


def test_samed_step_mode_same_first_loss_for_both_attentions(capsys):
    benchmark = load_tool('benchmark')
    results = benchmark.main(['--mode', 'train', '--arch', TINY_ARCH, '--img-size', '64',
                              '--dtype', 'fp32', 'bf16', '--device', 'cpu', '--repeats', '1'])
    assert 'SAMed LoRA training step' in capsys.readouterr().out
    fp32 = [results[(impl, 'fp32')]['loss'] for impl in ('reference', 'fused')]
    assert fp32[0] == pytest.approx(fp32[1], rel=1e-5)
    assert results[('fused', 'bf16')]['loss'] == pytest.approx(fp32[0], rel=1e-2)


def test_training_memory_runs_both_variants_in_fresh_processes(capsys):
    """Activation checkpointing recomputes the blocks: the same loss, in its own process."""
    memory = load_tool('training_memory')
    results = memory.main(['--arch', TINY_ARCH, '--img-size', '64', '--dtype', 'fp32',
                           '--device', 'cpu'])
    assert 'peak RSS growth' in capsys.readouterr().out
    assert set(results) == {False, True}
    assert results[True]['loss'] == pytest.approx(results[False]['loss'], rel=1e-6)


@pytest.mark.parametrize('kind', [None, 'AMX'])
def test_header_names_cpu_capability_and_flags_emulated_bf16(monkeypatch, kind):
    from mmsam.utils import collect_env
    benchmark = load_tool('benchmark')
    monkeypatch.setattr(collect_env, 'cpu_bf16_kind', lambda flags=None: kind)
    monkeypatch.setattr(benchmark, 'cpu_bf16_kind', lambda flags=None: kind)
    monkeypatch.setattr(collect_env, 'cpu_model_name', lambda path=None: 'Test CPU 9000')
    import torch
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX2')
    header = benchmark.machine_header(['fp32', 'bf16'])
    first = header.splitlines()[0]
    assert first.startswith('CPU: Test CPU 9000, ' + (kind or 'AVX2'))
    assert 'threads, load average' in header
    assert ('emulated' in header) == (kind is None)
    assert 'emulated' not in benchmark.machine_header(['fp32'])

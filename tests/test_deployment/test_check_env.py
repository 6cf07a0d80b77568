"""tools/misc/check_env.py / mmsam.utils.collect_env: facts of this environment, and broken
settings (faked) explained with their fix."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmsam.utils import collect_env as ce

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def env():
    return ce.collect_env()


def test_this_environment_is_consistent(env):
    import torch
    assert env['torch'] == torch.__version__ and env['mmcv'] == '2.1.0'
    assert env['mmcv_ops'] is True
    assert [p for p in ce.check_env(env) if p[2] == 'error'] == []
    flags = Path('/proc/cpuinfo').read_text().split('flags', 1)[1].split('\n', 1)[0]
    assert env['cpu_amx_bf16'] == (' amx_bf16' in flags)


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\n'
                    'processor\t: 1\nflags\t\t: fpu\n')
    assert ce.cpu_flags(str(info)) == {'fpu', 'sse', 'avx512f', 'avx512_bf16', 'amx_tile'}
    assert ce.cpu_flags(str(tmp_path / 'missing')) == set()


def test_mmcv_built_for_another_torch_is_explained(env, monkeypatch, capsys):
    fake = dict(env, mmcv_built_for=dict(torch='2.13.0+cpu', cuda='None', python='311'))
    monkeypatch.setattr(ce, 'collect_env', lambda: fake)
    assert ce.main() == 1
    report = capsys.readouterr().out
    assert f'built for torch 2.13.0+cpu (CUDA None), but torch {env["torch"]}' in report
    assert 'fix: pip uninstall -y mmcv, then run tools/setup_env.sh' in report


def test_mmcv_ops_that_do_not_load_are_explained(env, monkeypatch):
    # what loading mmcv._ext compiled against another torch gives
    error = ('ImportError: .../mmcv/_ext.cpython-311-x86_64-linux-gnu.so: undefined symbol: '
             '_ZN3c1017RegisterOperatorsD1Ev')
    monkeypatch.setattr(ce, 'mmcv_ops_status', lambda: (False, error))
    problems = ce.check_env(ce.collect_env())
    (what, fix, severity), = [p for p in problems if 'ops' in p[0]]
    assert 'do not match this torch (undefined symbol)' in what and severity == 'error'
    assert 'setup_env.sh' in fix
    lite = dict(env, mmcv_ops=False, mmcv_ops_error="ModuleNotFoundError: No module named "
                "'mmcv._ext'")
    assert any('mmcv-lite' in p[0] for p in ce.check_env(lite))


def test_build_key_parsed_from_the_wheel_path(monkeypatch):
    class Dist:
        def read_text(self, name):
            assert name == 'direct_url.json'
            return ('{"url": "file:///root/.cache/mmsam/mmcv-2.1.0/'
                    'torch-2.14.1%2Bcu130-cuda-13.0-py311/mmcv-2.1.0-cp311.whl"}')
    monkeypatch.setattr(ce.metadata, 'distribution', lambda name: Dist())
    assert ce.mmcv_build_info() == dict(torch='2.14.1+cu130', cuda='13.0', python='311')


@pytest.mark.slow
def test_command_line_tools():
    for cmd in ([sys.executable, str(REPO / 'tools' / 'misc' / 'check_env.py')],
                [sys.executable, '-m', 'mmsam.utils.collect_env']):
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert 'mmcv_ops: True' in proc.stdout and 'CPU bf16:' in proc.stdout

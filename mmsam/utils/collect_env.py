"""What this environment runs mmsam with, and what to do about each mismatch.

    python -m mmsam.utils.collect_env        (or python tools/misc/check_env.py)

:func:`collect_env` gathers the facts (torch, CUDA, cuDNN, GPUs, mmcv and its compiled ops,
mmseg, mmengine, segment-anything, onnx/onnxruntime, the CPU's bf16/AMX flags) and
:func:`check_env` turns them into problems, each with the fix. Nothing here imports a model.

Which torch mmcv's ops were compiled for: ``tools/setup_env.sh`` installs mmcv from a wheel it
built, cached under a folder named ``torch-<version>-cuda-<version>-py<XY>``; pip records that
path in mmcv's ``direct_url.json``. A wheel built for another torch either fails to load
(``undefined symbol``) or, worse, loads and crashes later; both are reported.
"""
import json
import os
import platform
import re
import sys
from importlib import metadata

#: the stack mmsam is pinned to (requirements/, tools/setup_env.sh)
PINNED = dict(torch='2.14.1', mmengine='0.10.7', mmcv='2.1.0', mmseg='1.2.2')
SETUP_HINT = 'run tools/setup_env.sh (it builds mmcv 2.1.0 with ops for the installed torch)'
_BUILD_KEY = re.compile(r'torch-(?P<torch>[^/]+?)-cuda-(?P<cuda>[^/]+?)-py(?P<py>\d+)')


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_flags(path='/proc/cpuinfo'):
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty if unreadable)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model_name(path='/proc/cpuinfo'):
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``), e.g.
    ``'AMD EPYC'``; ``'unknown CPU'`` when neither says."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('model name'):
                    return ' '.join(line.split(':', 1)[1].split())
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


def _torch_cpu_query(name):
    """``torch.cpu.<name>()`` (cpuinfo's CPUID view), False where this torch lacks it."""
    import torch
    query = getattr(torch.cpu, name, None)
    try:
        return bool(query()) if query is not None else False
    except RuntimeError:
        return False


def cpu_bf16_kind(flags=None):
    """How this CPU runs bf16 natively: ``'AMX'``, ``'AVX512-BF16'`` or None (it has neither:
    torch then emulates bf16 arithmetic and autocast to bf16 is several times slower than
    fp32).

    Either source suffices: the kernel's ``/proc/cpuinfo`` flags or torch's own CPUID query
    (``torch.cpu._is_amx_tile_supported`` / ``_is_avx512_bf16_supported``).

    Args:
        flags (set[str], optional): cpuinfo flags (default: :func:`cpu_flags`).
    """
    flags = cpu_flags() if flags is None else flags
    if 'amx_bf16' in flags or _torch_cpu_query('_is_amx_tile_supported'):
        return 'AMX'
    if 'avx512_bf16' in flags or _torch_cpu_query('_is_avx512_bf16_supported'):
        return 'AVX512-BF16'
    return None


def cpu_capability(flags=None):
    """The CPU's vector capability for bf16 purposes: ``'AMX'``, ``'AVX512-BF16'``, else torch's
    ``torch.backends.cpu.get_cpu_capability()`` (``'AVX512'``, ``'AVX2'``, ``'DEFAULT'``, ...).

    Args:
        flags (set[str], optional): cpuinfo flags (default: :func:`cpu_flags`).
    """
    kind = cpu_bf16_kind(flags)
    if kind is not None:
        return kind
    import torch
    return torch.backends.cpu.get_cpu_capability()


def cpu_description():
    """One line naming the CPU for benchmark headers, e.g. ``'AMD EPYC, AVX2 (no native bf16:
    no AMX or AVX512-BF16), 2 logical CPUs'``."""
    kind = cpu_bf16_kind()
    capability = cpu_capability()
    bf16 = f'native bf16 via {kind}' if kind else 'no native bf16: no AMX or AVX512-BF16'
    return f'{cpu_model_name()}, {capability} ({bf16}), {os.cpu_count()} logical CPUs'


def mmcv_build_info():
    """{'torch': ..., 'cuda': ..., 'python': ...} mmcv's wheel was built for, or None.

    Read from the wheel's path in mmcv's ``direct_url.json`` (tools/setup_env.sh's cache key).
    """
    try:
        text = metadata.distribution('mmcv').read_text('direct_url.json')
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        url = json.loads(text).get('url', '')
    except ValueError:
        return None
    from urllib.parse import unquote
    match = _BUILD_KEY.search(unquote(url))
    if match is None:
        return None
    return dict(torch=match['torch'], cuda=match['cuda'], python=match['py'])


def mmcv_ops_status():
    """(loaded, error message) of mmcv's compiled ops (``mmcv._ext``)."""
    try:
        import mmcv.ops  # noqa: F401
        from mmcv import _ext  # noqa: F401
    except Exception as err:  # ImportError, OSError (undefined symbol, missing library)
        return False, f'{type(err).__name__}: {err}'
    return True, None


def collect_env():
    """The facts: an ordered dict of name -> value (str, bool, list or None)."""
    env = dict(python=sys.version.split()[0], platform=platform.platform())
    try:
        import torch
    except Exception as err:
        env['torch'] = None
        env['torch_error'] = f'{type(err).__name__}: {err}'
        return env
    env['torch'] = torch.__version__
    env['torch_cuda'] = torch.version.cuda
    env['cudnn'] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() \
        else None
    env['cuda_available'] = torch.cuda.is_available()
    env['CUDA_VISIBLE_DEVICES'] = os.environ.get('CUDA_VISIBLE_DEVICES')
    env['gpus'] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if env['cuda_available'] else []
    flags = cpu_flags()
    env['cpu_avx512_bf16'] = 'avx512_bf16' in flags
    env['cpu_amx_bf16'] = 'amx_bf16' in flags
    env['torch_cpu_bf16'] = bool(getattr(torch.backends, 'mkldnn', None) and
                                 torch.backends.mkldnn.is_available() and
                                 torch.ops.mkldnn._is_mkldnn_bf16_supported())
    env['cpu_model'] = cpu_model_name()
    env['cpu_bf16'] = cpu_bf16_kind(flags)
    env['cpu_capability'] = cpu_capability(flags)
    env['num_threads'] = torch.get_num_threads()
    env['OMP_NUM_THREADS'] = os.environ.get('OMP_NUM_THREADS')
    for dist in ('mmengine', 'mmcv', 'mmsegmentation', 'segment_anything', 'torchvision',
                 'onnx', 'onnxruntime', 'SimpleITK', 'pydicom', 'nibabel'):
        env[dist] = _version(dist)
    env['mmcv_built_for'] = mmcv_build_info()
    env['mmcv_ops'], env['mmcv_ops_error'] = mmcv_ops_status()
    try:
        import segment_anything  # noqa: F401  (imports torchvision)
        env['segment_anything_import'] = None
    except Exception as err:
        env['segment_anything_import'] = f'{type(err).__name__}: {err}'
    return env


def _base(version):
    return None if version is None else version.split('+')[0]


def check_env(env):
    """Problems of an environment: a list of (what, fix, severity) with severity ``'error'``
    (mmsam will not work as installed) or ``'note'`` (works, but check); empty when all is
    well."""
    problems = []
    if env.get('torch') is None:
        return [(f'torch does not import ({env.get("torch_error")})', SETUP_HINT, 'error')]
    torch_version = env['torch']
    if _base(torch_version) != PINNED['torch']:
        problems.append((f'torch {torch_version}, mmsam is pinned to {PINNED["torch"]}',
                         f'pip install torch=={PINNED["torch"]} (a CUDA build for GPUs, see '
                         'README), then ' + SETUP_HINT))
    built = env.get('mmcv_built_for')
    if env.get('mmcv') is None:
        problems.append(('mmcv is not installed', SETUP_HINT))
    else:
        if env['mmcv'] != PINNED['mmcv']:
            problems.append((f'mmcv {env["mmcv"]}, but mmseg {PINNED["mmseg"]} needs mmcv<2.2 '
                             f'and mmsam is pinned to {PINNED["mmcv"]}',
                             f'pip uninstall -y mmcv, then {SETUP_HINT}'))
        if built is not None and built['torch'] != torch_version:
            problems.append((f'mmcv\'s ops were built for torch {built["torch"]} (CUDA '
                             f'{built["cuda"]}), but torch {torch_version} (CUDA '
                             f'{env.get("torch_cuda")}) is installed: compiled ops are tied to '
                             'the torch they were built against',
                             f'pip uninstall -y mmcv, then {SETUP_HINT}'))
        if not env.get('mmcv_ops'):
            error = env.get('mmcv_ops_error') or ''
            why = ('mmcv\'s compiled ops do not match this torch (undefined symbol)'
                   if 'undefined symbol' in error else 'mmcv\'s compiled ops do not load')
            if 'No module named' in error and '_ext' in error:
                why = 'mmcv has no compiled ops (mmcv-lite or a build without MMCV_WITH_OPS=1)'
            problems.append((f'{why}: {error}; `import mmseg.models` needs mmcv.ops',
                             f'pip uninstall -y mmcv mmcv-lite, then {SETUP_HINT}'))
    for dist, pinned in (('mmengine', PINNED['mmengine']), ('mmsegmentation', PINNED['mmseg'])):
        if env.get(dist) != pinned:
            problems.append((f'{dist} {env.get(dist)}, mmsam is pinned to {pinned}',
                             f'pip install {dist}=={pinned}'))
    if env.get('segment_anything') is None:
        problems.append(('segment-anything is not installed',
                         'pip install -r requirements/runtime.txt'))
    elif env.get('segment_anything_import'):
        problems.append((f'segment_anything does not import ({env["segment_anything_import"]})',
                         'install the torchvision built for this torch (torch 2.14.1 + '
                         'torchvision 0.29.1), see the README\'s known pitfalls'))
    if env.get('torch_cuda') is not None and not env.get('cuda_available'):
        visible = env.get('CUDA_VISIBLE_DEVICES')
        problems.append((f'torch is a CUDA {env["torch_cuda"]} build but sees no GPU'
                         + (f' (CUDA_VISIBLE_DEVICES={visible!r})' if visible is not None
                            else ''),
                         'on a CPU machine this is fine (use --device cpu); on a GPU machine '
                         'check nvidia-smi, the driver (it must support CUDA '
                         f'{env["torch_cuda"]}) and CUDA_VISIBLE_DEVICES', 'note'))
    if env.get('torch_cuda') is not None and env.get('cuda_available') and \
            env.get('cudnn') is None:
        problems.append(('CUDA is available but cuDNN is not',
                         'install the torch wheel with its bundled cuDNN (pip install torch)'))
    if env.get('cpu_amx_bf16') or env.get('cpu_avx512_bf16'):
        if not env.get('torch_cpu_bf16'):
            problems.append(('the CPU has bf16 instructions but torch\'s oneDNN does not use '
                             'them', 'use a torch build with mkldnn (the PyPI wheels have it)',
                             'note'))
    for dist, req in (('onnx', 'deploy'), ('onnxruntime', 'deploy'), ('SimpleITK', 'deploy'),
                      ('pydicom', 'deploy'), ('nibabel', 'runtime')):
        if env.get(dist) is None:
            problems.append((f'{dist} is not installed (needed by tools/infer.py / '
                             'tools/deployment)', f'pip install -r requirements/{req}.txt'))
    return [p if len(p) == 3 else (*p, 'error') for p in problems]


def format_report(env, problems):
    """Plain-text report: the facts, then each problem with its fix (or 'no problems')."""
    lines = [f'{key}: {value}' for key, value in env.items()]
    bf16 = env.get('cpu_bf16') or ('AMX' if env.get('cpu_amx_bf16') else 'AVX512-BF16'
                                   if env.get('cpu_avx512_bf16') else None)
    if bf16:
        lines.append(f'CPU bf16: {bf16} (bf16 autocast on CPU is fast; --amp uses it)')
    else:
        lines.append(f'CPU bf16: none ({env.get("cpu_capability")}: bf16 on CPU is emulated '
                     'and slow, so --amp keeps float32 here)')
    lines.append('')
    if not problems:
        lines.append('no problems found')
    for n, (what, fix, severity) in enumerate(problems, 1):
        lines.append(f'{"problem" if severity == "error" else "note"} {n}: {what}')
        lines.append(f'  fix: {fix}')
    return '\n'.join(lines)


def main():
    env = collect_env()
    problems = check_env(env)
    print(format_report(env, problems))
    return 1 if any(severity == 'error' for *_, severity in problems) else 0


if __name__ == '__main__':
    sys.exit(main())

"""Mixed precision on CPU and GPU: mmengine's ``AmpOptimWrapper`` without its GPU assert.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU/NPU/MLU/MUSA and its ``autocast`` only
allows bf16 on CPU. This subclass is registered in mmsam's ``OPTIM_WRAPPERS`` under the same
name, so every config (and ``tools/train.py --amp``) under ``default_scope='mmsam'`` gets it:
autocast runs on the model's device, and the loss is scaled only for fp16 (bf16 has fp32's
exponent range and needs no scaling).

The default dtype (``--amp`` without ``--amp-dtype``) follows the hardware: fp16 on CUDA; on CPU
bf16 only where the CPU runs it natively (AMX or AVX512-BF16). Elsewhere (e.g. AVX2-only CPUs)
torch emulates bf16 and autocast is several times slower than fp32, so ``--amp`` keeps fp32
there and logs one line saying so; an explicit ``--amp-dtype bfloat16`` still runs, with a
warning. ``tools/train.py``, ``tools/test.py`` and ``tools/infer.py`` all decide here.
"""
import logging
from contextlib import contextmanager

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from mmsam.registry import OPTIM_WRAPPERS
from mmsam.utils import collect_env

AMP_DTYPES = ('bfloat16', 'float16')

#: bf16 autocast against fp32 on a CPU without native bf16: the ViT-B encoder at 1024 x 1024,
#: 2 threads, on a 2-core AMD EPYC (AVX2), README "Performance", EPYC (AVX2) (min / median).
EMULATED_BF16_SLOWDOWN = 'a ViT-B encoder forward took 5.8-7.8x as long as in fp32'

#: ``--amp-dtype``'s help text for tools/train.py, tools/test.py and tools/infer.py.
AMP_DTYPE_HELP = ('autocast dtype with --amp (default: float16 on CUDA; on CPU bfloat16 where '
                  'the CPU runs it natively (AMX / AVX512-BF16), else autocast stays off and '
                  'the model runs in float32, which is faster there)')

_logged = set()


def _log_once(message, level):
    """Logs ``message`` once per process (every AMP step and tool call asks again)."""
    if message not in _logged:
        _logged.add(message)
        print_log(message, logger='current', level=level)


def cpu_runs_bf16_natively():
    """Whether this CPU has AMX or AVX512-BF16 (see ``mmsam.utils.collect_env.cpu_bf16_kind``)."""
    return collect_env.cpu_bf16_kind() is not None


def default_amp_dtype(device_type):
    """The autocast dtype ``--amp`` uses without ``--amp-dtype``.

    Args:
        device_type (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        str: ``'float16'`` on CUDA (mmengine's default); on CPU ``'bfloat16'`` where the CPU
        runs it natively (AMX / AVX512-BF16), else ``'float32'``: autocast stays off, because
        emulated bf16 is slower than fp32.
    """
    if device_type != 'cpu':
        return 'float16'
    return 'bfloat16' if cpu_runs_bf16_natively() else 'float32'


def _explain_cpu_choice(dtype, explicit):
    """The log line (fp32 kept) or warning (bf16 asked for) of a CPU without native bf16."""
    capability = collect_env.cpu_capability()
    if not explicit and dtype == 'float32':
        _log_once(f'--amp on this CPU ({capability}, no AMX or AVX512-BF16): mixed precision '
                  'stays off and the model runs in float32, because emulated bfloat16 is '
                  f'slower ({EMULATED_BF16_SLOWDOWN} on an AVX2 CPU). Pass --amp-dtype '
                  'bfloat16 to force it.', logging.INFO)
    elif explicit and dtype == 'bfloat16':
        _log_once(f'--amp-dtype bfloat16 on a CPU without native bf16 ({capability}, no AMX '
                  f'or AVX512-BF16): torch emulates it, expect it to be several times slower '
                  f'than float32 ({EMULATED_BF16_SLOWDOWN} on an AVX2 CPU). Drop --amp-dtype '
                  '(--amp then keeps float32 here) unless you need bf16 numerics.', logging.WARNING)


def resolve_amp_dtype(dtype, device_type):
    """Validate an autocast dtype name.

    On a CPU without native bf16, the default (None) is float32 and an explicit bfloat16 is
    kept with a warning (:func:`default_amp_dtype`); either is said once per process.

    Args:
        dtype (str | torch.dtype | None): ``'bfloat16'``, ``'float16'``, a torch dtype, or None
            for :func:`default_amp_dtype`.
        device_type (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        torch.dtype: the autocast dtype; ``torch.float32`` means autocast off.
    """
    explicit = dtype is not None
    if dtype is None:
        dtype = default_amp_dtype(device_type)
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace('torch.', '')
    if device_type == 'cpu' and (dtype == 'float32' or dtype == 'bfloat16' and explicit
                                 and not cpu_runs_bf16_natively()):
        _explain_cpu_choice(dtype, explicit)
    if dtype == 'float32' and not explicit:
        return torch.float32
    if dtype not in AMP_DTYPES:
        raise ValueError(f'mixed precision dtype {dtype!r} is not one of {AMP_DTYPES} '
                         '(--amp-dtype / optim_wrapper.dtype)')
    if dtype == 'bfloat16' and device_type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise ValueError('this CUDA GPU has no bfloat16 support: use --amp-dtype float16')
    return getattr(torch, dtype)


def model_device_type(model):
    """The device type of the model's first parameter ('cpu' for a parameter-less model)."""
    param = next(iter(model.parameters()), None)
    return 'cpu' if param is None else param.device.type


@contextmanager
def autocast_for(device_type, dtype=None):
    """``torch.autocast`` for inference (``tools/test.py`` / ``tools/infer.py --amp``).

    Args:
        device_type (str): ``'cpu'`` or ``'cuda'``.
        dtype (str | torch.dtype | None): see :func:`resolve_amp_dtype`; the default on a CPU
            without native bf16 leaves autocast off (float32).
    """
    with _autocast(device_type, resolve_amp_dtype(dtype, device_type)):
        yield


def _autocast(device_type, dtype):
    """``torch.autocast`` to ``dtype``; disabled for ``torch.float32``."""
    if dtype == torch.float32:
        return torch.autocast(device_type=device_type, enabled=False)
    return torch.autocast(device_type=device_type, dtype=dtype)


@OPTIM_WRAPPERS.register_module(name='AmpOptimWrapper')
class AmpOptimWrapper(MMEngineAmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` for CPU and GPU.

    Args:
        loss_scale (str | float | dict): as mmengine's (``'dynamic'``, an initial scale, or
            ``GradScaler`` kwargs); only used with fp16.
        dtype (str | torch.dtype, optional): ``'bfloat16'`` or ``'float16'``; None picks
            :func:`default_amp_dtype` at the first step, from the model's device: fp16 on
            CUDA, bf16 on a CPU with AMX / AVX512-BF16, float32 (autocast off) on other CPUs.
        use_fsdp (bool): not supported here (mmengine's wrapper handles FSDP on GPU).
        **kwargs: passed to ``OptimWrapper`` (``optimizer``, ``clip_grad``, ...).
    """

    def __init__(self, loss_scale='dynamic', dtype=None, use_fsdp=False, **kwargs):
        if use_fsdp:
            raise ValueError('mmsam AmpOptimWrapper: use_fsdp is not supported')
        if not isinstance(loss_scale, (str, float, dict)) or \
                (isinstance(loss_scale, str) and loss_scale != 'dynamic'):
            raise TypeError('loss_scale must be a float, a dict or "dynamic", got '
                            f'{loss_scale!r}')
        OptimWrapper.__init__(self, **kwargs)
        self.loss_scale = loss_scale
        self._scale_update_param = loss_scale if isinstance(loss_scale, float) else None
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).replace('torch.', '')
        if dtype is not None and dtype not in AMP_DTYPES:
            raise ValueError(f'AmpOptimWrapper: dtype={dtype!r} is not one of {AMP_DTYPES} '
                             '(or None: the device\'s default, see default_amp_dtype)')
        self.requested_dtype = dtype
        self.cast_dtype = None
        self.device_type = None
        self.loss_scaler = None

    def _setup(self, device_type):
        """Fix device, dtype and scaler on first use (the model is on its device by then)."""
        if self.device_type == device_type:
            return
        self.device_type = device_type
        self.cast_dtype = resolve_amp_dtype(self.requested_dtype, device_type)
        kwargs = {}
        if isinstance(self.loss_scale, float):
            kwargs = dict(init_scale=self.loss_scale)
        elif isinstance(self.loss_scale, dict):
            kwargs = dict(self.loss_scale)
        state = self.loss_scaler.state_dict() if self.loss_scaler is not None else None
        self.loss_scaler = torch.amp.GradScaler(
            device_type, enabled=self.cast_dtype == torch.float16, **kwargs)
        if state:
            self.loss_scaler.load_state_dict(state)

    @contextmanager
    def optim_context(self, model):
        """Autocast on the model's device, plus OptimWrapper's gradient-accumulation context.

        Args:
            model (nn.Module): the training model.
        """
        self._setup(model_device_type(model))
        with OptimWrapper.optim_context(self, model), \
                _autocast(self.device_type, self.cast_dtype):
            yield

    def backward(self, loss, **kwargs):
        """Back-propagate the (fp16: scaled) loss."""
        if self.loss_scaler is None:  # backward without optim_context: plain fp32 use
            self._setup(loss.device.type)
        super().backward(loss, **kwargs)

    def step(self, **kwargs):
        """Unscale (fp16), clip if configured, step and update the scale."""
        if self.loss_scaler is None:
            self._setup('cpu')
        super().step(**kwargs)

    def state_dict(self):
        """Optimizer state plus ``loss_scaler`` (as mmengine's)."""
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict):
        """Load optimizer state; the scaler state is applied when the device is known."""
        scaler_state = state_dict.pop('loss_scaler', None)
        super().load_state_dict(state_dict)
        if scaler_state:
            if self.loss_scaler is None:
                self._setup('cuda' if torch.cuda.is_available() else 'cpu')
            self.loss_scaler.load_state_dict(scaler_state)

"""Mixed precision on CPU and GPU: mmengine's ``AmpOptimWrapper`` without its GPU assert.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU/NPU/MLU/MUSA and its ``autocast`` only
allows bf16 on CPU. This subclass is registered in mmsam's ``OPTIM_WRAPPERS`` under the same
name, so every config (and ``tools/train.py --amp``) under ``default_scope='mmsam'`` gets it:
autocast runs on the model's device (bf16 by default on CPU, fp16 on CUDA), and the loss is
scaled only for fp16 (bf16 has fp32's exponent range and needs no scaling).
"""
from contextlib import contextmanager

import torch
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from mmsam.registry import OPTIM_WRAPPERS

AMP_DTYPES = ('bfloat16', 'float16')


def default_amp_dtype(device_type):
    """bf16 on CPU (AMX/AVX512-BF16 run it natively), fp16 elsewhere (mmengine's default)."""
    return 'bfloat16' if device_type == 'cpu' else 'float16'


def resolve_amp_dtype(dtype, device_type):
    """Validate an autocast dtype name.

    Args:
        dtype (str | torch.dtype | None): ``'bfloat16'``, ``'float16'``, a torch dtype, or None
            for :func:`default_amp_dtype`.
        device_type (str): ``'cpu'`` or ``'cuda'``.

    Returns:
        torch.dtype: the autocast dtype.
    """
    if dtype is None:
        dtype = default_amp_dtype(device_type)
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace('torch.', '')
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
    """``torch.autocast`` for inference (``tools/test.py --amp``).

    Args:
        device_type (str): ``'cpu'`` or ``'cuda'``.
        dtype (str | torch.dtype | None): see :func:`resolve_amp_dtype`.
    """
    with torch.autocast(device_type=device_type, dtype=resolve_amp_dtype(dtype, device_type)):
        yield


@OPTIM_WRAPPERS.register_module(name='AmpOptimWrapper')
class AmpOptimWrapper(MMEngineAmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` for CPU and GPU.

    Args:
        loss_scale (str | float | dict): as mmengine's (``'dynamic'``, an initial scale, or
            ``GradScaler`` kwargs); only used with fp16.
        dtype (str | torch.dtype, optional): ``'bfloat16'`` or ``'float16'``; None picks bf16
            on CPU and fp16 on CUDA (decided at the first step, from the model's device).
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
                             '(or None: bf16 on CPU, fp16 on CUDA)')
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
                torch.autocast(device_type=self.device_type, dtype=self.cast_dtype):
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

"""Parameter schedulers."""
from .poly_lr_after_warmup import PolyLRAfterWarmup

__all__ = ['PolyLRAfterWarmup']

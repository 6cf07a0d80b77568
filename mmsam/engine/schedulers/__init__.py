"""Parameter schedulers and loss-weight schedules."""
from .poly_lr_after_warmup import PolyLRAfterWarmup
from .stage_loss_weight import stage_loss_weight

__all__ = ['PolyLRAfterWarmup', 'stage_loss_weight']

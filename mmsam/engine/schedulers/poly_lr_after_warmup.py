"""Poly learning-rate decay that starts when the warm-up ends (SAMed / H-SAM official)."""
import warnings

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

from mmsam.registry import PARAM_SCHEDULERS

HORIZONS = ('remaining', 'total')


@PARAM_SCHEDULERS.register_module()
class PolyLRAfterWarmup(LRSchedulerMixin, _ParamScheduler):
    """``lr(i) = eta_min + (base_lr - eta_min) * (1 - (i - warmup_iters) / T) ** power``
    for iterations ``warmup_iters <= i < end``, set in closed form.

    Pair it with a ``LinearLR`` that ends at ``warmup_iters``: unlike mmengine's ``PolyLR``
    with ``begin=0`` (which decays during the warm-up too, the two multiplying), the decay
    starts from ``base_lr`` when the warm-up is over, as the official SAMed and H-SAM trainers
    do. ``horizon='total'`` is their rule, ``T = end`` (the whole run: the rate ends at
    ``base_lr * (warmup_iters / end) ** power``, not 0); ``'remaining'`` uses
    ``T = end - warmup_iters`` and reaches ``eta_min`` at ``end``.

    ``end`` is in epochs with ``convert_to_iter_based=True`` (iterations otherwise);
    ``warmup_iters`` is always in iterations.

    Args:
        optimizer: the wrapped optimizer.
        warmup_iters (int): iteration at which the decay starts.
        end (int | float): end of the schedule (epochs with ``convert_to_iter_based``).
        power (float): polynomial power (official 0.9).
        eta_min (float): rate at ``T``.
        horizon (str): ``'total'`` or ``'remaining'``, see above.
        by_epoch (bool): must be False after conversion; set True only together with
            ``convert_to_iter_based=True``.
    """

    def __init__(self, optimizer, warmup_iters, end, power=0.9, eta_min=0.0,
                 horizon='total', by_epoch=False, last_step=-1, verbose=False):
        if by_epoch:
            raise ValueError('PolyLRAfterWarmup is iteration-based: give end in epochs with '
                             'convert_to_iter_based=True, or in iterations with by_epoch=False')
        if horizon not in HORIZONS:
            raise ValueError(f'PolyLRAfterWarmup horizon must be one of {HORIZONS}, got '
                             f'{horizon!r}')
        if warmup_iters < 0 or end < 1:
            raise ValueError(f'PolyLRAfterWarmup needs warmup_iters >= 0 and end >= 1, got '
                             f'warmup_iters={warmup_iters}, end={end} (iterations)')
        if warmup_iters >= end:
            # a run shorter than its warm-up (e.g. a shrunk test run): no decay phase left
            warnings.warn(f'PolyLRAfterWarmup: the run ends (iteration {end}) before the '
                          f'warm-up does ({warmup_iters}); the poly decay never starts')
            warmup_iters = end - 1
        self.power, self.eta_min, self.horizon = power, eta_min, horizon
        self.span = end if horizon == 'total' else end - warmup_iters
        super().__init__(optimizer, begin=warmup_iters, end=end, by_epoch=False,
                         last_step=last_step, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, end, by_epoch=True, epoch_length=None, **kwargs):
        """Build from ``end`` in epochs (``convert_to_iter_based=True``)."""
        if not by_epoch or not epoch_length:
            raise ValueError('PolyLRAfterWarmup: convert_to_iter_based needs by_epoch=True '
                             'and the epoch length')
        return cls(*args, end=int(end * epoch_length), by_epoch=False, **kwargs)

    def _get_value(self):
        """Closed-form rate of every param group at this step."""
        progress = min(max(self.last_step, 0) / self.span, 1.0)
        factor = (1 - progress) ** self.power
        return [self.eta_min + (base - self.eta_min) * factor for base in self.base_values]

"""nnU-Net's per-batch foreground oversampling: the last third of every batch is foreground."""
from typing import Iterator, List, Tuple

from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from mmsam.registry import DATA_SAMPLERS


def nnunet_forced_foreground(position: int, global_batch_size: int,
                             oversample_foreground_percent: float) -> bool:
    """nnU-Net's rule: ``not position < round(global_batch_size * (1 - percent))``."""
    return not position < round(global_batch_size * (1 - oversample_foreground_percent))


@DATA_SAMPLERS.register_module()
class ForegroundOversampleBatchSampler(Sampler):
    """Batch ``sampler``'s indices and mark which patches must be foreground, as nnU-Net 2.5.1.

    nnU-Net's data loader forces the patches at positions ``j >= round(B * (1 - p))`` of each
    batch of ``B`` to contain foreground (``_oversample_last_XX_percent``); with p = 0.33 and
    B = 2 that is exactly one patch per batch, the second. Under DDP nnU-Net splits the global
    batch of ``B * world_size`` into consecutive per-rank chunks and applies the rule to the
    global position, so rank ``r``'s patch ``j`` is at ``r * B + j`` (equal batch sizes per
    rank, as mmengine's Runner gives).

    Each yielded batch is a list of ``(index, force_fg)`` tuples;
    :class:`~mmsam.datasets.VolumePatchDataset` passes ``force_fg`` to the pipeline, where
    :class:`~mmsam.datasets.transforms.RandomPatchCrop3D` reads it. In a config::

        train_dataloader = dict(batch_size=2, sampler=dict(type='DefaultSampler', shuffle=True),
                                batch_sampler=dict(type='ForegroundOversampleBatchSampler'))

    Args:
        sampler (Sampler): yields dataset indices (the Runner passes the built ``sampler``).
        batch_size (int): per-rank batch size (the Runner passes the loader's ``batch_size``).
        oversample_foreground_percent (float): nnU-Net's p. Default: 0.33.
        drop_last (bool): drop a last, incomplete batch. Default: False (its positions follow
            the same rule).
    """

    def __init__(self, sampler: Sampler, batch_size: int,
                 oversample_foreground_percent: float = 0.33, drop_last: bool = False) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'{type(self).__name__}: batch_size must be a positive int, got '
                             f'{batch_size!r}')
        if not 0 <= oversample_foreground_percent <= 1:
            raise ValueError(f'{type(self).__name__}: oversample_foreground_percent must be in '
                             f'[0, 1], got {oversample_foreground_percent!r}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.oversample_foreground_percent = oversample_foreground_percent
        self.drop_last = bool(drop_last)
        rank, world_size = get_dist_info()
        global_batch = batch_size * world_size
        self.force_fg = [nnunet_forced_foreground(rank * batch_size + j, global_batch,
                                                  oversample_foreground_percent)
                         for j in range(batch_size)]

    def __iter__(self) -> Iterator[List[Tuple[int, bool]]]:
        batch = []
        for index in self.sampler:
            batch.append((index, self.force_fg[len(batch)]))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size

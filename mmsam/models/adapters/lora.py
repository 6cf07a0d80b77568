"""LoRA on the fused qkv projection of SAM's ViT blocks (as SAMed and H-SAM use it)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsam.registry import MODELS

_QKV_INDEX = {'q': 0, 'k': 1, 'v': 2}


class LoRAQKVLinear(nn.Linear):
    """A fused qkv ``nn.Linear`` plus low-rank updates on some of its q, k, v parts.

    The frozen weight and bias keep the names ``weight`` and ``bias``, so official SAM
    checkpoints load unchanged; the adapter adds ``lora_a.<t>.weight`` (r, C) and
    ``lora_b.<t>.weight`` (C, r) for each target ``t``. ``lora_b`` starts at zero, so a freshly
    injected adapter leaves the output exactly as before.

    Args:
        base (nn.Linear): the original qkv projection, (C) -> (3C); its parameters are reused.
        rank (int): r.
        alpha (float): scaling numerator; the update is scaled by ``alpha / rank``.
        targets (Sequence[str]): which of ``'q'``, ``'k'``, ``'v'`` get an update.
        dropout (float): dropout on the adapter's input.
    """

    def __init__(self, base, rank, alpha, targets, dropout=0.0):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        dim = self.out_features // 3
        self.targets = tuple(targets)
        self.scaling = alpha / rank
        self.lora_a = nn.ModuleDict({t: nn.Linear(self.in_features, rank, bias=False)
                                     for t in self.targets})
        self.lora_b = nn.ModuleDict({t: nn.Linear(rank, dim, bias=False) for t in self.targets})
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        for t in self.targets:
            nn.init.kaiming_uniform_(self.lora_a[t].weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_b[t].weight)

    def forward(self, x):
        """Args: x (Tensor): (..., C). Returns: Tensor: (..., 3C)."""
        out = F.linear(x, self.weight, self.bias)
        x = self.lora_dropout(x)
        parts = list(out.chunk(3, dim=-1))
        for t in self.targets:
            i = _QKV_INDEX[t]
            parts[i] = parts[i] + self.lora_b[t](self.lora_a[t](x)) * self.scaling
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def merged_linear(self):
        """A plain ``nn.Linear`` (C) -> (3C) whose weight holds the scaled low-rank updates:
        the same outputs without the adapter (for export and deployment)."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        weight = self.weight.detach().clone()
        dim = self.out_features // 3
        for t in self.targets:
            i = _QKV_INDEX[t]
            weight[i * dim:(i + 1) * dim] += self.scaling * (self.lora_b[t].weight @
                                                             self.lora_a[t].weight)
        linear.weight.copy_(weight)
        if self.bias is not None:
            linear.bias.copy_(self.bias.detach())
        return linear


@MODELS.register_module()
class LoRA:
    """Injects :class:`LoRAQKVLinear` into the attention of every block of a SAM ViT.

    Args:
        rank (int): r (SAMed: 4).
        alpha (float, optional): the update is scaled by ``alpha / rank``; defaults to ``rank``
            (scale 1, as SAMed).
        targets (Sequence[str]): parts of the fused qkv to adapt; SAMed adapts q and v.
        dropout (float): dropout on the adapter's input.
    """

    def __init__(self, rank=4, alpha=None, targets=('q', 'v'), dropout=0.0):
        if rank < 1:
            raise ValueError(f'LoRA rank must be >= 1, got {rank}')
        bad = set(targets) - set(_QKV_INDEX)
        if bad or not targets:
            raise ValueError(f"LoRA targets must be a non-empty subset of ('q', 'k', 'v'), "
                             f'got {targets}')
        self.rank, self.alpha = rank, float(rank if alpha is None else alpha)
        self.targets, self.dropout = tuple(targets), dropout

    def inject(self, vit):
        """Replace ``blocks[i].attn.qkv`` of ``vit`` in place.

        Args:
            vit (nn.Module): a SAM ``ImageEncoderViT`` (or subclass).

        Returns:
            list[str]: names (relative to ``vit``) of the parameters the adapter added.
        """
        added = []
        for i, block in enumerate(vit.blocks):
            attn = block.attn
            attn.qkv = LoRAQKVLinear(attn.qkv, self.rank, self.alpha, self.targets, self.dropout)
            added += [f'blocks.{i}.attn.qkv.{name}' for name, _ in attn.qkv.named_parameters()
                      if name.startswith('lora_')]
        return added

"""A plain bottleneck adapter (MaskSAM's "vAdapter" ablations B1-B5): no depth mixing."""
import torch.nn as nn

from mmsam.registry import MODELS


@MODELS.register_module()
class BottleneckAdapter(nn.Module):
    """y = x + fc2(GELU(fc1(x))) (``skip``) or fc2(GELU(fc1(x))), per item and position.

    Takes the depth adapters' call signature, so it drops into their places in configs.

    Args:
        embed_dims (int): D.
        num_frames (int, optional): unused (accepted for config compatibility).
        ratio (float): hidden = int(D * ratio).
        skip (bool): add the input to the output.
        zero_init (bool): zero ``fc2`` (equivalence tests; MaskSAM uses default init).
    """

    def __init__(self, embed_dims, num_frames=None, ratio=0.25, skip=True, zero_init=False):
        super().__init__()
        hidden = int(embed_dims * ratio)
        self.embed_dims, self.num_frames, self.hidden, self.skip = (
            embed_dims, num_frames, hidden, skip)
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, embed_dims)
        if zero_init:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x, num_queries=1, hw=None):
        """Args: x (Tensor): (N, ..., D). Returns: Tensor: the shape of ``x``."""
        out = self.fc2(self.act(self.fc1(x)))
        return x + out if self.skip else out

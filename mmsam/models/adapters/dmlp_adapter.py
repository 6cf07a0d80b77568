"""MaskSAM's DMLP adapter: a bottleneck with an MLP along the depth (slice) axis."""
import torch.nn as nn

from mmsam.registry import MODELS
from .depth_layout import num_groups, spatial_size

_POSITIONS = ('middle', 'after_up', 'before_down')


@MODELS.register_module()
class DMLPAdapter(nn.Module):
    """Bottleneck adapter with a residual MLP that mixes each feature across the T slices.

    ``'middle'``: h = GELU(fc1(x)); h = h + M(h); y = x + fc2(h), where
    M = Linear(r_d T -> T) . GELU . Linear(T -> r_d T) acts along depth, separately for every
    case, query, position and channel. ``'after_up'`` (ablation B6): o = fc2(GELU(fc1(x)));
    y = x + (o + M(o)). ``'before_down'`` (B7): y = x + fc2(GELU(fc1(x + M(x)))); the skip
    carries the unmixed x.

    Args:
        embed_dims (int): D.
        num_frames (int): T, slices per case.
        ratio (float): hidden = int(D * ratio) (decoder: 64 at D = 256).
        depth_ratio (int): r_d, the depth MLP's expansion.
        position (str): where the depth MLP acts, see above.
        skip (bool): add the input to the output.
        zero_init (bool): start as identity (skip) or zero: zero ``fc2`` (and, for
            ``'after_up'``, the depth MLP's output layer too). For equivalence tests; MaskSAM's
            official code keeps PyTorch's default init.
    """

    def __init__(self, embed_dims, num_frames, ratio=0.25, depth_ratio=4, position='middle',
                 skip=True, zero_init=False):
        super().__init__()
        if position not in _POSITIONS:
            raise ValueError(f'DMLPAdapter position must be one of {_POSITIONS}, got {position!r}')
        if num_frames is None or num_frames < 1:
            raise ValueError(f'DMLPAdapter needs num_frames >= 1, got {num_frames}')
        hidden = int(embed_dims * ratio)
        self.embed_dims, self.num_frames, self.hidden = embed_dims, num_frames, hidden
        self.position, self.skip = position, skip
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.fc2 = nn.Linear(hidden, embed_dims)
        self.depth_fc1 = nn.Linear(num_frames, num_frames * depth_ratio)
        self.depth_fc2 = nn.Linear(num_frames * depth_ratio, num_frames)
        self.act = nn.GELU()
        if zero_init:
            zeroed = (self.fc2, self.depth_fc2) if position == 'after_up' else (self.fc2,)
            for layer in zeroed:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def depth_mlp(self, x, b, q):
        """x + M(x) for (N, ..., c) items ordered (b, t, q); M mixes along t only."""
        t, c = self.num_frames, x.shape[-1]
        seq = x.reshape(b, t, q, -1, c).permute(0, 2, 3, 4, 1)  # (B, Q, L, c, T)
        seq = self.depth_fc2(self.act(self.depth_fc1(seq)))
        return x + seq.permute(0, 4, 1, 2, 3).reshape(x.shape)

    def forward(self, x, num_queries=1, hw=None):
        """Adapt features of B * T * Q items ordered (b, t, q).

        Args:
            x (Tensor): (N, h, w, D) maps or (N, L, D) tokens.
            num_queries (int): Q.
            hw (tuple[int, int], optional): only checked against L when given.

        Returns:
            Tensor: the shape of ``x``.
        """
        if hw is not None or x.dim() == 4:
            spatial_size(x, hw, 'DMLPAdapter')
        b = num_groups(x.shape[0], self.num_frames, num_queries, 'DMLPAdapter')
        inp = self.depth_mlp(x, b, num_queries) if self.position == 'before_down' else x
        hid = self.act(self.fc1(inp))
        if self.position == 'middle':
            hid = self.depth_mlp(hid, b, num_queries)
        out = self.fc2(hid)
        if self.position == 'after_up':
            out = self.depth_mlp(out, b, num_queries)
        return x + out if self.skip else out

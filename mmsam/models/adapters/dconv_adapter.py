"""MaskSAM's DConv adapter: a bottleneck with a depth-wise 3D convolution over (T, h, w)."""
import torch.nn as nn

from mmsam.registry import MODELS
from .depth_layout import num_groups, spatial_size


@MODELS.register_module()
class DConvAdapter(nn.Module):
    """Bottleneck adapter whose hidden features pass a depth-wise 3D conv across slices.

    h = GELU(fc1(x)); h = h + GELU(LN_c(DWConv3d(h))); out = fc2(h); y = x + out (``skip``)
    or out. The conv sees each case's (and query's) slices as a (hidden, T, h, w) volume, so
    nothing mixes across cases or queries.

    Args:
        embed_dims (int): D.
        num_frames (int): T, slices per case.
        ratio (float): hidden = int(D * ratio) (MaskSAM: 0.25, i.e. 192 for ViT-B, 320 for
            ViT-H, 64 in the decoder).
        kernel_size (int): odd k of the k^3 depth-wise conv (padding k // 2, with bias).
        skip (bool): add the input to the output.
        zero_init (bool): zero ``fc2`` so that the adapter starts as identity (skip) or zero;
            MaskSAM's official code keeps PyTorch's default init; this is for equivalence tests.
    """

    def __init__(self, embed_dims, num_frames, ratio=0.25, kernel_size=3, skip=True,
                 zero_init=False):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'DConvAdapter kernel_size must be odd to keep the shape, got '
                             f'{kernel_size}')
        if num_frames is None or num_frames < 1:
            raise ValueError(f'DConvAdapter needs num_frames >= 1, got {num_frames}')
        hidden = int(embed_dims * ratio)
        self.embed_dims, self.num_frames, self.hidden, self.skip = (
            embed_dims, num_frames, hidden, skip)
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.dwconv = nn.Conv3d(hidden, hidden, kernel_size, padding=kernel_size // 2,
                                groups=hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, embed_dims)
        if zero_init:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x, num_queries=1, hw=None):
        """Adapt features of B * T * Q items ordered (b, t, q).

        Args:
            x (Tensor): (N, h, w, D) maps, or (N, L, D) with ``hw`` = (h, w), L = h * w.
            num_queries (int): Q.
            hw (tuple[int, int], optional): the grid of (N, L, D) input.

        Returns:
            Tensor: the shape of ``x``.
        """
        h, w = spatial_size(x, hw, 'DConvAdapter')
        t, q = self.num_frames, num_queries
        b = num_groups(x.shape[0], t, q, 'DConvAdapter')
        hid = self.act(self.fc1(x))
        c = hid.shape[-1]
        vol = hid.reshape(b, t, q, h, w, c).permute(0, 2, 5, 1, 3, 4).reshape(b * q, c, t, h, w)
        vol = self.dwconv(vol).reshape(b, q, c, t, h, w).permute(0, 3, 1, 4, 5, 2)
        hid = hid + self.act(self.norm(vol)).reshape(hid.shape)
        out = self.fc2(hid)
        return x + out if self.skip else out

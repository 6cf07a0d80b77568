"""MaskSAM's 3D refinement of the decoder's low-resolution query masks."""
import math

import torch.nn as nn

from mmsam.registry import MODELS
from .volume_blocks import conv_norm_act, to_slices, to_volume


@MODELS.register_module()
class MaskRefine3D(nn.Module):
    """Upsamples per-slice query mask logits with 3D convs, queries as channels (MaskSAM).

    Conv3d 3x3x3 Q -> hidden + IN (affine) + LeakyReLU(0.01), log2(upsample) x [ConvT (1,2,2)
    + IN + GELU], Conv3d 3x3x3 hidden -> Q. The queries of a slice mix (they are channels) and
    neighbouring slices of one case mix through the 3x3x3 kernels; cases never mix.

    The IN after each ConvT has no affine parameters, as in the official code (a bare
    ``InstanceNorm3d(hidden)``); MaskSAM's Synapse
    parameter count (10,326,899, counted on the official code's modules) relies on it.

    Args:
        num_queries (int): Q, the channels in and out.
        num_frames (int): T, slices per case; the batch is (B*T), item b*T+t.
        hidden (int): width of the hidden convs.
        upsample (int): in-plane factor, a power of 2 (1: no ConvT stage).
    """

    def __init__(self, num_queries, num_frames, hidden=64, upsample=4):
        super().__init__()
        if upsample < 1 or upsample & (upsample - 1):
            raise ValueError(f'MaskRefine3D: upsample must be a power of 2, got {upsample}')
        layers = conv_norm_act(num_queries, hidden)
        for _ in range(int(math.log2(upsample))):
            layers += [nn.ConvTranspose3d(hidden, hidden, (1, 2, 2), stride=(1, 2, 2)),
                       nn.InstanceNorm3d(hidden, eps=1e-5), nn.GELU()]
        layers.append(nn.Conv3d(hidden, num_queries, 3, padding=1))
        self.layers = nn.Sequential(*layers)
        self.num_queries, self.num_frames, self.upsample = num_queries, num_frames, upsample

    def forward(self, x):
        """Args: x (Tensor): (B*T, Q, h, w) mask logits, item b*T+t.

        Returns:
            Tensor: (B*T, Q, h*upsample, w*upsample) mask logits.
        """
        n, q, h, w = x.shape
        t = self.num_frames
        if n % t or q != self.num_queries:
            raise ValueError(f'MaskRefine3D: input {tuple(x.shape)} needs a batch divisible by '
                             f'num_frames T={t} and {self.num_queries} query channels')
        return to_slices(self.layers(to_volume(x, t)))

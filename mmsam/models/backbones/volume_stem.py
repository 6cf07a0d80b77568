"""A small 3D conv stem that turns a (B, C, T, H, W) volume patch into SAM's 3 input channels."""
import math

import torch.nn as nn

from mmsam.registry import MODELS
from ..utils.volume_blocks import conv_norm_act


@MODELS.register_module()
class VolumeStem(nn.Module):
    """Maps a z-scored volume patch to the 3-channel slices SAM's encoder reads (MaskSAM).

    ``channels`` 3x3x3 conv blocks, ``log2(upsample)`` in-plane transposed convs (kernel and
    stride (1, 2, 2)) for encoders that want a larger input than the patch (MaskSAM's ACDC:
    256 -> 1024), and a last conv block to ``out_channels``. Slices mix only through the
    3x3x3 kernels, within one case.

    Args:
        in_channels (int): image channels (1 for CT/MR).
        channels (Sequence[int]): widths of the hidden conv blocks (MaskSAM: (8,)).
        out_channels (int): 3, SAM's input.
        upsample (int): in-plane upsampling factor, a power of 2.
    """

    def __init__(self, in_channels=1, channels=(8,), out_channels=3, upsample=1):
        super().__init__()
        if upsample < 1 or upsample & (upsample - 1):
            raise ValueError(f'VolumeStem upsample must be a power of 2, got {upsample}')
        layers, width = [], in_channels
        for c in channels:
            layers += conv_norm_act(width, c)
            width = c
        for _ in range(int(math.log2(upsample))):
            layers += [nn.ConvTranspose3d(width, width, (1, 2, 2), stride=(1, 2, 2)),
                       nn.InstanceNorm3d(width, eps=1e-5, affine=True), nn.GELU()]
        layers += conv_norm_act(width, out_channels)
        self.layers = nn.Sequential(*layers)
        self.upsample = upsample

    def forward(self, x):
        """Args: x (Tensor): (B, in_channels, T, H, W).

        Returns:
            Tensor: (B, out_channels, T, H * upsample, W * upsample).
        """
        return self.layers(x)

"""A small 3D conv stem that turns a (B, C, T, H, W) volume patch into SAM's 3 input channels."""
import math

import torch.nn as nn

from mmsam.registry import MODELS
from ..utils.volume_blocks import conv_norm_act


@MODELS.register_module()
class VolumeStem(nn.Module):
    """Maps a z-scored volume patch to the 3-channel slices SAM's encoder reads (MaskSAM).

    ``channels`` 3x3x3 conv blocks, ``log2(upsample)`` in-plane transposed convs (kernel and
    stride (1, 2, 2)) + InstanceNorm + GELU for encoders that want a larger input than the patch
    (MaskSAM's ACDC: 256 -> 1024), ``post_channels`` 3x3x3 conv blocks at the upsampled size,
    and a last conv block to ``out_channels``. Slices mix only through the 3x3x3 kernels,
    within one case. A conv block is nnU-Net's Conv3d + InstanceNorm3d (affine) + LeakyReLU.

    MaskSAM's official stems:

    - Synapse / AMOS: ``channels=(8,)``: conv 1 -> 8, conv 8 -> 3.
    - ACDC: ``channels=(16,), upsample=4, up_channels=(16, 32), post_channels=(32,),
      up_norm_affine=False``: conv 1 -> 16, ConvT 16 -> 16, ConvT 16 -> 32 (each followed by a
      bare ``InstanceNorm3d`` and GELU), conv 32 -> 32 at 1024 x 1024, conv 32 -> 3; 33,945
      parameters.

    Args:
        in_channels (int): image channels (1 for CT/MR).
        channels (Sequence[int]): widths of the conv blocks before upsampling.
        out_channels (int): 3, SAM's input.
        upsample (int): in-plane upsampling factor, a power of 2.
        up_channels (Sequence[int], optional): output width of each transposed conv
            (log2(upsample) entries); default: keep the width.
        post_channels (Sequence[int]): widths of the conv blocks after upsampling.
        up_norm_affine (bool): whether the InstanceNorm after each transposed conv has affine
            parameters (the official ACDC stem's has none).
    """

    def __init__(self, in_channels=1, channels=(8,), out_channels=3, upsample=1,
                 up_channels=None, post_channels=(), up_norm_affine=True):
        super().__init__()
        if upsample < 1 or upsample & (upsample - 1):
            raise ValueError(f'VolumeStem upsample must be a power of 2, got {upsample}')
        steps = int(math.log2(upsample))
        layers, width = [], in_channels
        for c in channels:
            layers += conv_norm_act(width, c)
            width = c
        up_channels = (width,) * steps if up_channels is None else tuple(up_channels)
        if len(up_channels) != steps:
            raise ValueError(f'VolumeStem: up_channels={up_channels} needs one width per x2 '
                             f'step, log2(upsample={upsample}) = {steps}')
        for c in up_channels:
            layers += [nn.ConvTranspose3d(width, c, (1, 2, 2), stride=(1, 2, 2)),
                       nn.InstanceNorm3d(c, eps=1e-5, affine=up_norm_affine), nn.GELU()]
            width = c
        for c in post_channels:
            layers += conv_norm_act(width, c)
            width = c
        layers += conv_norm_act(width, out_channels)
        self.layers = nn.Sequential(*layers)
        self.upsample = upsample

    def forward(self, x):
        """Args: x (Tensor): (B, in_channels, T, H, W).

        Returns:
            Tensor: (B, out_channels, T, H * upsample, W * upsample).
        """
        return self.layers(x)

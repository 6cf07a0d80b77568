"""3D conv pieces shared by the volumetric components (stem, prompt generator, refinement)."""
import torch.nn as nn


def conv_norm_act(in_channels, out_channels, kernel_size=3):
    """nnU-Net's block: Conv3d (padding k//2, bias) + InstanceNorm3d (affine) + LeakyReLU(0.01).

    Args:
        in_channels (int), out_channels (int): channels.
        kernel_size (int | tuple[int, int, int]): odd kernel size(s), (kT, kH, kW).

    Returns:
        list[nn.Module]: the three layers, to splice into an ``nn.Sequential``.
    """
    kernel = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
    return [nn.Conv3d(in_channels, out_channels, kernel, padding=tuple(k // 2 for k in kernel)),
            nn.InstanceNorm3d(out_channels, eps=1e-5, affine=True),
            nn.LeakyReLU(0.01, inplace=True)]


def to_volume(x, num_frames):
    """(B*T, C, h, w), item b*T+t -> (B, C, T, h, w)."""
    n, c, h, w = x.shape
    return x.reshape(n // num_frames, num_frames, c, h, w).transpose(1, 2)


def to_slices(x):
    """(B, C, T, h, w) -> (B*T, C, h, w), item b*T+t."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)

"""A small convolutional encoder ending in a diagonal Gaussian (pSAM's prior / posterior)."""
import torch.nn as nn


class LatentGaussianEncoder(nn.Module):
    """Conv blocks -> global average -> 1x1 conv -> mean and clamped log-std of a Gaussian.

    As Probabilistic U-Net's prior and posterior nets: each block is ``convs_per_block`` (2)
    3x3 conv + ReLU, and blocks after the first start with a 2x2 average pool (``downsample``).
    The public pSAM code's nets are ``channels=(32, 64)``, ``convs_per_block=1``,
    ``downsample=False`` (two convolutions at full resolution, then the global average). The
    posterior is the same network with the annotation concatenated to its input as an extra
    channel.

    Args:
        in_channels (int): input channels (image: 3; embedding: its width; +1 for the mask).
        latent_dim (int): L >= 1.
        channels (tuple[int]): width of each block.
        log_std_range (tuple[float, float]): the log-std is clamped to this range, so a
            sampled z stays finite and the KL bounded.
        convs_per_block (int): 3x3 convolutions per block (>= 1).
        downsample (bool): average-pool 2x2 at the start of every block after the first.
    """

    def __init__(self, in_channels, latent_dim, channels=(32, 64, 128), log_std_range=(-5., 2.),
                 convs_per_block=2, downsample=True):
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f'LatentGaussianEncoder: latent_dim must be >= 1, got {latent_dim}')
        if not channels:
            raise ValueError('LatentGaussianEncoder: channels must name at least one block')
        if int(convs_per_block) < 1:
            raise ValueError(f'LatentGaussianEncoder: convs_per_block must be >= 1, got '
                             f'{convs_per_block}')
        low, high = log_std_range
        if not low < high:
            raise ValueError(f'LatentGaussianEncoder: log_std_range must be (low, high) with '
                             f'low < high, got {log_std_range}')
        self.latent_dim, self.log_std_range = int(latent_dim), (float(low), float(high))
        layers, width = [], in_channels
        for i, out in enumerate(channels):
            if i > 0 and downsample:
                layers.append(nn.AvgPool2d(2, ceil_mode=True))
            for _ in range(int(convs_per_block)):
                layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(inplace=True)]
                width = out
        self.encoder = nn.Sequential(*layers)
        self.to_gaussian = nn.Conv2d(width, 2 * self.latent_dim, 1)
        self.reset_parameters()

    def reset_parameters(self):
        """He-normal weights and zero biases (as Probabilistic U-Net).

        PyTorch's default conv init shrinks the signal at every layer: through these blocks
        and the global average, the mean would vary by ~1e-4 from input to input at the start
        (measured on the synthetic lesions' embeddings), against a posterior std of ~1, so z
        would start as pure noise, the decoder would learn to ignore it and the posterior would
        get no gradient to encode the annotation.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nonlinearity = 'linear' if module is self.to_gaussian else 'relu'
                nn.init.kaiming_normal_(module.weight, nonlinearity=nonlinearity)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        """Args: x (Tensor): (B, in_channels, H, W).

        Returns:
            tuple[Tensor, Tensor]: mean (B, L) and log-std (B, L).
        """
        feats = self.encoder(x).mean((2, 3), keepdim=True)
        mu, log_std = self.to_gaussian(feats).flatten(1).chunk(2, dim=1)
        return mu, log_std.clamp(*self.log_std_range)

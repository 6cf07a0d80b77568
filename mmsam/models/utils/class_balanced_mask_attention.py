"""H-SAM's class-balanced mask-guided self-attention (CMAttn, H-SAM Sec. 3.2)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ClassBalancedMaskAttention(nn.Module):
    """Re-weights the image embedding with self-attention over the stage-1 mask feature.

    The mask feature is the stage-1 mask tokens multiplied directly with the stage-1 image
    features (no upsampling), normalised over classes with a softmax. In training, with class
    balance on, Gaussian noise is added at every pixel whose ground-truth class is i, with
    variance ``var(i) = max_noise_var * f_min / f_i`` (inversely proportional to the class
    frequency f_i, the rarest class getting ``max_noise_var``). Pixels then attend to each
    other (multi-head self-attention over the h * w positions, with SAM's positional
    encoding), a linear layer compresses the channels to one weight per position, and the
    embedding becomes ``E * w + E`` (Hadamard product plus the residual path). The linear
    layer starts at zero, so a fresh block leaves the embedding unchanged.

    The paper leaves the width after compression open; one weight per position (a spatial
    re-weighting shared by all channels) is this implementation's reading.

    Args:
        num_classes (int): C, channels of the mask feature.
        embed_dim (int): D, width of the attention.
        num_heads (int): attention heads.
        class_balance (bool): add the class-balanced noise in training.
        max_noise_var (float): variance for the rarest class.
    """

    def __init__(self, num_classes, embed_dim, num_heads=8, class_balance=True,
                 max_noise_var=0.1):
        super().__init__()
        self.class_balance = class_balance
        self.max_noise_var = max_noise_var
        self.embed = nn.Linear(num_classes, embed_dim)
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(embed_dim)
        self.compress = nn.Linear(embed_dim, 1)
        nn.init.zeros_(self.compress.weight)
        nn.init.zeros_(self.compress.bias)

    def noise_std(self, class_frequencies):
        """Per-class noise std from class frequencies (C,) -> (C,)."""
        return class_balanced_noise_std(class_frequencies, self.max_noise_var)

    def forward(self, embedding, mask_feature, image_pe, labels=None, class_frequencies=None):
        """Enhance the image embedding.

        Args:
            embedding (Tensor): (B, D, h, w) image embedding (stage-2 input).
            mask_feature (Tensor): (B, C, h, w) stage-1 mask logits at embedding resolution.
            image_pe (Tensor): (1, D, h, w) positional encoding.
            labels (Tensor, optional): (B, h, w) class ids (255 ignored); training only.
            class_frequencies (Tensor, optional): (C,) class frequencies for the noise.

        Returns:
            Tensor: (B, D, h, w).
        """
        b, d, h, w = embedding.shape
        prob = mask_feature.softmax(dim=1)
        if self.training and self.class_balance and labels is not None:
            prob = add_class_balanced_noise(prob, labels, self.noise_std(class_frequencies))
        tokens = self.embed(prob.flatten(2).transpose(1, 2))
        pos = image_pe.flatten(2).transpose(1, 2)
        attended, _ = self.attn(tokens + pos, tokens + pos, tokens, need_weights=False)
        weight = self.compress(self.norm(tokens + attended))
        weight = weight.transpose(1, 2).reshape(b, 1, h, w)
        return embedding * weight + embedding


def class_balanced_noise_std(class_frequencies, max_noise_var):
    """H-SAM's noise std per class: ``sqrt(max_noise_var * f_min / f_i)``.

    Args:
        class_frequencies (Tensor): (C,) pixel frequencies (any positive scale).
        max_noise_var (float): variance of the rarest class.

    Returns:
        Tensor: (C,) standard deviations.
    """
    freq = class_frequencies.clamp_min(1e-12)
    return (max_noise_var * freq.min() / freq).sqrt()


def add_class_balanced_noise(prob, labels, std, ignore_index=255):
    """Add Gaussian noise to every channel of each pixel with the std of its GT class.

    Args:
        prob (Tensor): (B, C, h, w) normalised mask feature.
        labels (Tensor): (B, h, w) class ids; ``ignore_index`` pixels get no noise.
        std (Tensor): (C,) noise std per class.

    Returns:
        Tensor: (B, C, h, w) ``prob + N(0, std[labels]^2)``.
    """
    std = std.to(prob)
    pixel_std = torch.where(labels != ignore_index, std[labels.clamp(0, std.numel() - 1)],
                            torch.zeros_like(prob[:, 0]))
    return prob + torch.randn_like(prob) * pixel_std.unsqueeze(1)


def resize_labels(labels, size):
    """Nearest-neighbour resize of (B, H, W) class ids to ``size``: (B, h, w) long."""
    return F.interpolate(labels[:, None].float(), size=size, mode='nearest')[:, 0].long()

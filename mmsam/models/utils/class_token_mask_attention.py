"""H-SAM's CMAttn with one token per class (the official build's reading of H-SAM Sec. 3.2)."""
import torch
import torch.nn as nn
from segment_anything.modeling.common import MLPBlock

from .class_balanced_mask_attention import add_class_balanced_noise, class_balanced_noise_std


class ClassTokenMaskAttention(nn.Module):
    """Re-weights the image embedding with self-attention among the C class maps.

    The mask feature ``P`` (the stage-1 mask tokens times the stage-1 image features, a
    softmax over classes) is read as C tokens, token c being class c's flattened (h * w) map:
    the attention runs over classes and its width is the number of embedding positions (1024
    for a 32 x 32 embedding at 512 input). In training, with class balance on, every pixel
    whose ground-truth class is i gets Gaussian noise of variance
    ``var(i) = max_noise_var * f_min / f_i`` on all C channels before the attention. Then::

        X = LN(P + Attn(P));  X = X + Attn(X);  X = LN(X + MLP(X))     # (B, C, h * w)
        a = Linear_C->1(X^T)                                             # (B, h * w)
        E' = E * tanh(a) + E                                             # (B, D, h, w)

    The linear layer "compresses the channel dimension" (the C classes) to one weight per
    position, shared by all D embedding channels. ``tanh`` bounds the weight in (-1, 1), so
    ``1 + tanh(a)`` stays positive and the re-weighting can never flip an embedding's sign;
    the linear layer starts at zero, so a fresh block is the identity. The official code instead takes a softmax over the
    single compressed channel, which is 1 everywhere, making the block a constant ``2 E``.

    Widths (two attention layers, an MLP of width ``mlp_ratio * h * w``) follow the official
    build, which gives about 12.6M parameters at a 32 x 32 embedding.

    Args:
        num_classes (int): C, classes including background.
        num_positions (int): h * w of the image embedding (attention width).
        num_heads (int): heads; must divide ``num_positions``.
        mlp_ratio (float): MLP hidden width / ``num_positions`` (official: 2).
        class_balance (bool): add the class-balanced noise in training.
        max_noise_var (float): variance for the rarest class.
    """

    def __init__(self, num_classes, num_positions, num_heads=8, mlp_ratio=2.0,
                 class_balance=True, max_noise_var=0.1):
        super().__init__()
        if num_positions % num_heads:
            raise ValueError(f'CMAttn over class tokens: attention_heads={num_heads} must '
                             f'divide the token width h * w = {num_positions}; choose a divisor '
                             f'(e.g. 4 for a 14 x 14 embedding)')
        self.num_positions = num_positions
        self.class_balance = class_balance
        self.max_noise_var = max_noise_var
        self.attn1 = nn.MultiheadAttention(num_positions, num_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(num_positions)
        self.attn2 = nn.MultiheadAttention(num_positions, num_heads, batch_first=True)
        self.mlp = MLPBlock(num_positions, int(mlp_ratio * num_positions), act=nn.ReLU)
        self.norm2 = nn.LayerNorm(num_positions)
        self.compress = nn.Linear(num_classes, 1)
        nn.init.zeros_(self.compress.weight)
        nn.init.zeros_(self.compress.bias)

    def noise_std(self, class_frequencies):
        """Per-class noise std from class frequencies (C,) -> (C,)."""
        return class_balanced_noise_std(class_frequencies, self.max_noise_var)

    def forward(self, embedding, mask_feature, image_pe=None, labels=None,
                class_frequencies=None):
        """Enhance the image embedding.

        Args:
            embedding (Tensor): (B, D, h, w) image embedding (stage-2 input).
            mask_feature (Tensor): (B, C, h, w) stage-1 mask logits at embedding resolution.
            image_pe (Tensor, optional): unused (the tokens are classes, not positions); kept
                for the spatial variant's call signature.
            labels (Tensor, optional): (B, h, w) class ids (255 ignored); training only.
            class_frequencies (Tensor, optional): (C,) class frequencies for the noise.

        Returns:
            Tensor: (B, D, h, w).
        """
        b, _, h, w = embedding.shape
        if h * w != self.num_positions:
            raise ValueError(f'CMAttn was built for h * w = {self.num_positions} positions, '
                             f'the embedding is {h} x {w}; set the head for this input size')
        prob = mask_feature.softmax(dim=1)
        if self.training and self.class_balance and labels is not None:
            prob = add_class_balanced_noise(prob, labels, self.noise_std(class_frequencies))
        x = prob.flatten(2)
        x = self.norm1(x + self.attn1(x, x, x, need_weights=False)[0])
        x = x + self.attn2(x, x, x, need_weights=False)[0]
        x = self.norm2(x + self.mlp(x))
        weight = torch.tanh(self.compress(x.transpose(1, 2)).transpose(1, 2).reshape(b, 1, h, w))
        return embedding * weight + embedding

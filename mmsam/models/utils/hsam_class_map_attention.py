"""H-SAM's CMAttn as the official code computes it (in ``MaskDecoder2_224/_512``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from segment_anything.modeling.common import MLPBlock
from segment_anything.modeling.transformer import Attention

WEIGHTINGS = ('softmax', 'tanh')
# utils.noise_list: the noise std of the i-th rarest label in the batch
OFFICIAL_NOISE_STDS = (0.35, 0.3, 0.3, 0.2, 0.2, 0.1, 0.1, 0.0, 0.0)


class HSAMClassMapAttention(nn.Module):
    """Re-weights stage 2's input with attention among the stage-1 class maps (official).

    The input is the raw stage-1 mask feature ``P`` (the class tokens times the stage-1
    image features, no normalisation): C tokens, token c being class c's (h * w) map. Then,
    with no residual around either attention::

        X = LN1(Attn1(P));  X = Attn2(X);  X = LN2(X + MLP(X))        # (B, C, h * w)
        a = ReLU(Linear_C->1(X^T))                                       # (B, h * w, 1)
        S' = S + S * g(a)                                                # (B, D, h, w)

    with S the stage-2 input (image embedding plus the dense prompt). The official ``g`` is a
    softmax over the single channel of ``a``, which is 1 everywhere: the block returns
    ``2 S`` whatever its weights, and they get no gradient (``weighting='softmax'``, the
    official quirk). ``'tanh'`` makes the weighting depend on ``a``.

    In training (official 224 build; the 512 build has these lines commented out, which the
    softmax makes invisible anyway), ``P`` goes through dropout (0.1) and, with
    ``class_balance``, Gaussian noise: the label ranked i-th rarest in the batch gets std
    ``noise_stds[i]``, plus the mean of ``P``, on every channel of its pixels. The official
    labels for this are the first B * h * w entries of the flattened stage-1 (1/4-resolution)
    label batch (a ``Tensor.resize_``, not a resampling); that is reproduced here.

    Widths: token width h * w (196 at 224 input, 1024 at 512), ``num_heads`` (official 7 at
    196, 8 at 1024), MLP ``mlp_dim`` (official 2048 in both builds).

    Args:
        num_classes (int): C.
        num_positions (int): h * w.
        num_heads (int): attention heads; must divide ``num_positions``.
        mlp_dim (int): MLP hidden width.
        weighting (str): ``'softmax'`` (official) or ``'tanh'``.
        class_balance (bool): the training-time noise.
        noise_stds (tuple[float]): std per rarity rank.
        feature_dropout (float): training-time dropout on ``P`` (official 224 build: 0.1).
    """

    def __init__(self, num_classes, num_positions, num_heads=8, mlp_dim=2048, weighting='softmax',
                 class_balance=True, noise_stds=OFFICIAL_NOISE_STDS, feature_dropout=0.1):
        super().__init__()
        if num_positions % num_heads:
            raise ValueError(f'official CMAttn: attention_heads={num_heads} must divide the '
                             f'token width h * w = {num_positions} (official: 7 at 14 x 14, '
                             '8 at 32 x 32)')
        if weighting not in WEIGHTINGS:
            raise ValueError(f'CMAttn weighting must be one of {WEIGHTINGS}, got {weighting!r}')
        self.num_positions = num_positions
        self.weighting = weighting
        self.class_balance = class_balance
        self.noise_stds = tuple(noise_stds)
        self.feature_dropout = feature_dropout
        self.self_attn = Attention(num_positions, num_heads)
        self.norm1 = nn.LayerNorm(num_positions)
        self.self_attn2 = Attention(num_positions, num_heads)
        self.norm2 = nn.LayerNorm(num_positions)
        self.mlp = MLPBlock(num_positions, mlp_dim, nn.ReLU)
        self.med_sel = nn.Sequential(nn.Linear(num_classes, 1), nn.ReLU())

    def add_noise(self, feature, labels):
        """The official class-balanced noise: (B, C, h * w), (B, H1, W1) labels -> same."""
        b, c, n = feature.shape
        flat = labels.reshape(-1)[:b * n].reshape(b, 1, n).expand(b, c, n)
        values, counts = torch.unique(flat, sorted=True, return_counts=True)
        mean = feature.mean()
        out = feature
        for rank, index in enumerate(torch.sort(counts).indices.tolist()):
            std = self.noise_stds[min(rank, len(self.noise_stds) - 1)]
            noise = torch.randn_like(feature) * std + mean
            out = torch.where(flat == values[index], out + noise, out)
        return out

    def forward(self, src, mask_feature, labels=None):
        """Re-weight the stage-2 input.

        Args:
            src (Tensor): (B, D, h, w) image embedding plus dense prompt.
            mask_feature (Tensor): (B, C, h * w) raw stage-1 mask feature.
            labels (Tensor, optional): (B, H1, W1) stage-1-resolution labels (training noise).

        Returns:
            Tensor: (B, D, h, w).
        """
        b, _, h, w = src.shape
        if mask_feature.shape[-1] != self.num_positions or h * w != self.num_positions:
            raise ValueError(f'official CMAttn was built for h * w = {self.num_positions}, got '
                             f'an embedding of {h} x {w}; set the head for this input size')
        x = mask_feature
        if self.training:
            x = F.dropout(x, self.feature_dropout, training=True)
            if self.class_balance and labels is not None:
                x = self.add_noise(x, labels)
        x = self.norm1(self.self_attn(q=x, k=x, v=x))
        x = self.self_attn2(q=x, k=x, v=x)
        x = self.norm2(x + self.mlp(x))
        a = self.med_sel(x.transpose(-2, -1)).transpose(-1, -2).reshape(b, 1, h, w)
        weight = a.softmax(dim=1) if self.weighting == 'softmax' else torch.tanh(a)
        return src + src * weight

"""MaskSAM's prompt generator: a 3D U-Net-like decoder over SAM encoder features that predicts
auxiliary masks, learned boxes and auxiliary classifier tokens for every slice."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsam.registry import MODELS
from ..utils.volume_blocks import conv_norm_act, to_slices, to_volume

NAME = 'MaskSAMPromptGenerator'


def up2(in_channels, out_channels):
    """In-plane x2 transposed conv, kernel = stride = (1, 2, 2), with bias."""
    return nn.ConvTranspose3d(in_channels, out_channels, (1, 2, 2), stride=(1, 2, 2))


def _check_config(channels, scales, kernel_sizes, num_convs, box_pool, cls_pool, token_dim):
    levels = len(channels)
    if levels < 1 or not levels == len(scales) == len(kernel_sizes) == len(num_convs):
        raise ValueError(f'{NAME}: channels, scales, kernel_sizes and num_convs need one entry '
                         f'per level, got {len(channels)}, {len(scales)}, {len(kernel_sizes)}, '
                         f'{len(num_convs)}')
    if (scales[0] != 1 or any(s < 1 or s & (s - 1) for s in scales)
            or any(b < a for a, b in zip(scales, scales[1:]))):
        raise ValueError(f'{NAME}: scales must be non-decreasing powers of 2 starting at 1 '
                         f'(level 0 is the neck at the grid g), got {scales}')
    if any(b > 2 * a for a, b in zip(scales, scales[1:])):
        raise ValueError(f'{NAME}: each level may at most double the scale of the one below '
                         f'(one ConvT x2 between levels), got {scales}')
    if any(s < 2 for s in scales[1:]):
        raise ValueError(f'{NAME}: levels after the first need scale >= 2 (their skip is '
                         f'log2(scale) x [ConvT x2 + conv block] from E), got {scales}')
    if any(len(k) != 3 or any(v % 2 == 0 for v in k) for k in kernel_sizes):
        raise ValueError(f'{NAME}: kernel_sizes must be odd (kT, kH, kW) triples, so that '
                         f'padding k//2 keeps the size; got {kernel_sizes}')
    if any(n < 1 for n in num_convs):
        raise ValueError(f'{NAME}: num_convs must be >= 1 per level, got {num_convs}')
    for lvl in range(1, levels):
        if scales[lvl] == scales[lvl - 1] and channels[lvl] != channels[lvl - 1]:
            raise ValueError(f'{NAME}: level {lvl} keeps scale {scales[lvl]}, so the map from '
                             f'below is not upsampled and channels[{lvl}] must equal '
                             f'channels[{lvl - 1}]; got channels={channels}')
    if box_pool != 2:
        raise ValueError(f'{NAME}: box_pool must be 2 (the 2x2 cells are x1, y1, px, py), '
                         f'got {box_pool}')
    if cls_pool ** 2 != token_dim:
        raise ValueError(f'{NAME}: cls_pool ** 2 = {cls_pool ** 2} must equal token_dim = '
                         f'{token_dim} (one pooled cls map is flattened into one token)')


@MODELS.register_module()
class MaskSAMPromptGenerator(nn.Module):
    """Decodes the encoder's multi-level features into MaskSAM's prompts and class tokens.

    Level 0 reads the SAM neck output; level l >= 1 reads the l-th last block output, brought
    to ``scales[l]`` x g by log2(scales[l]) x [ConvT (1,2,2) + conv block] (the skip), and
    concatenated with the level below (ConvT x2 when the scale grows, else as is). Heads: a
    1x1x1 conv to Q mask logits at the last level; the pooled maps of every level, concatenated,
    give Q boxes ((T, 2, 2) pool -> 1x1x1 conv + IN + sigmoid) and Q tokens ((T, p, p) pool ->
    3x3x3 conv + IN + GELU, flattened to p*p). Slices mix only through the 3D kernels, within
    one case.

    Args:
        embed_dim (int): E, the width of the raw block outputs.
        num_frames (int): T, slices per case; the batch is (B*T), item b*T+t.
        num_queries (int): Q.
        token_dim (int): width of the classifier tokens; must be ``cls_pool ** 2``.
        neck_dim (int): width of the SAM neck output (256).
        channels (Sequence[int]): c_l per level, level 0 = neck.
        scales (Sequence[int]): in-plane scale of each level relative to the grid g; powers
            of 2, non-decreasing, starting at 1.
        kernel_sizes (Sequence[tuple[int, int, int]]): odd (kT, kH, kW) per level.
        num_convs (Sequence[int]): conv blocks per level (>= 1).
        box_pool (int): in-plane pool of the box head; must be 2.
        cls_pool (int): in-plane pool of the token head.
        share_skips (bool): levels with the same scale share one skip module (MaskSAM ACDC),
            built with the first such level's kernel; each level keeps its own stage.
        input_size (int | tuple[int, int] | None): the mask size (H, W) the head expects;
            when given, ``g * scales[-1]`` is checked against it.
    """

    def __init__(self, embed_dim, num_frames, num_queries=24, token_dim=256, neck_dim=256,
                 channels=(256, 128, 128, 64, 64), scales=(1, 2, 4, 8, 16),
                 kernel_sizes=((3, 3, 3),) * 4 + ((1, 3, 3),), num_convs=(2, 1, 1, 1, 1),
                 box_pool=2, cls_pool=16, share_skips=False, input_size=None):
        super().__init__()
        channels, scales, num_convs = tuple(channels), tuple(scales), tuple(num_convs)
        kernel_sizes = tuple(tuple(k) for k in kernel_sizes)
        _check_config(channels, scales, kernel_sizes, num_convs, box_pool, cls_pool, token_dim)
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        self.input_size = None if input_size is None else tuple(input_size)
        if self.input_size is not None and any(s % scales[-1] for s in self.input_size):
            raise ValueError(f'{NAME}: prompt generator scales {scales} reach g*{scales[-1]}, '
                             f'which cannot equal the input {self.input_size} for any grid g')
        self.embed_dim, self.num_frames, self.num_queries = embed_dim, num_frames, num_queries
        self.token_dim, self.neck_dim = token_dim, neck_dim
        self.channels, self.scales = channels, scales
        self.box_pool, self.cls_pool = box_pool, cls_pool

        def stage(in_channels, lvl):
            layers = conv_norm_act(in_channels, channels[lvl], kernel_sizes[lvl])
            for _ in range(num_convs[lvl] - 1):
                layers += conv_norm_act(channels[lvl], channels[lvl], kernel_sizes[lvl])
            return nn.Sequential(*layers)

        self.stages = nn.ModuleList([stage(neck_dim, 0)])
        self.ups = nn.ModuleList([nn.Identity()])
        # skips holds each distinct module once; skip_index maps a level to its entry.
        self.skips, self.skip_index, first_of_scale = nn.ModuleList(), [None], {}
        for lvl in range(1, len(channels)):
            c, k = channels[lvl], kernel_sizes[lvl]
            grows = scales[lvl] > scales[lvl - 1]
            self.ups.append(up2(channels[lvl - 1], c) if grows else nn.Identity())
            if share_skips and scales[lvl] in first_of_scale:
                # same scale within a run of equal scales implies equal channels (checked).
                self.skip_index.append(self.skip_index[first_of_scale[scales[lvl]]])
            else:
                layers = []
                for i in range(int(math.log2(scales[lvl]))):
                    layers += [up2(embed_dim if i == 0 else c, c)] + conv_norm_act(c, c, k)
                self.skips.append(nn.Sequential(*layers))
                self.skip_index.append(len(self.skips) - 1)
                first_of_scale[scales[lvl]] = lvl
            self.stages.append(stage(2 * c, lvl))
        total = sum(channels)
        self.mask_head = nn.Conv3d(channels[-1], num_queries, 1)
        self.box_head = nn.Sequential(nn.Conv3d(total, num_queries, 1, bias=False),
                                      nn.InstanceNorm3d(num_queries, eps=1e-5, affine=True),
                                      nn.Sigmoid())
        self.cls_head = nn.Sequential(nn.Conv3d(total, num_queries, 3, padding=1),
                                      nn.InstanceNorm3d(num_queries, eps=1e-5, affine=True),
                                      nn.GELU())

    def _check_inputs(self, inputs):
        levels = len(self.channels)
        if len(inputs) != levels:
            raise ValueError(f'{NAME}: expected {levels} feature maps (the out_indices block '
                             f'outputs, then the neck output last; one per entry of '
                             f'channels={self.channels}), got {len(inputs)}; check the '
                             f'encoder out_indices and with_neck_output=True')
        n, _, gh, gw = inputs[-1].shape
        if n % self.num_frames:
            raise ValueError(f'{NAME}: batch {n} is not divisible by num_frames '
                             f'T={self.num_frames}')
        for i, x in enumerate(inputs):
            width = self.neck_dim if i == levels - 1 else self.embed_dim
            if tuple(x.shape) != (n, width, gh, gw):
                raise ValueError(f'{NAME}: input {i} has shape {tuple(x.shape)}, expected '
                                 f'{(n, width, gh, gw)} (embed_dim={self.embed_dim}, '
                                 f'neck_dim={self.neck_dim})')
        size = (gh * self.scales[-1], gw * self.scales[-1])
        if self.input_size is not None and size != self.input_size:
            raise ValueError(f'{NAME}: prompt generator scales {self.scales} reach '
                             f'g*{self.scales[-1]} = {size} but the input is {self.input_size}; '
                             f'change scales or the encoder grid')

    def forward(self, inputs):
        """Args: inputs (Sequence[Tensor]): the backbone tuple, the raw block outputs
        (B*T, E, g, g) in out_indices order, then the neck output (B*T, neck_dim, g, g) last.

        Returns:
            dict: ``image_embedding`` (B*T, neck_dim, g, g), the neck output unchanged;
            ``aux_mask_logits`` (B*T, Q, g*s, g*s) with s = scales[-1]; ``aux_boxes``
            (B*T, Q, 4) normalised (x1, y1, x2, y2), x2 >= x1 and y2 >= y1 by construction;
            ``aux_cls_tokens`` (B*T, Q, token_dim).
        """
        self._check_inputs(inputs)
        t = self.num_frames
        feats = [to_volume(f, t) for f in reversed(inputs)]
        box_in, cls_in = [], []
        for lvl, feat in enumerate(feats):
            if lvl == 0:
                x = self.stages[0](feat)
            else:
                skip = self.skips[self.skip_index[lvl]](feat)
                x = self.stages[lvl](torch.cat([self.ups[lvl](x), skip], dim=1))
            box_in.append(F.adaptive_avg_pool3d(x, (t, self.box_pool, self.box_pool)))
            cls_in.append(F.adaptive_avg_pool3d(x, (t, self.cls_pool, self.cls_pool)))
        masks = to_slices(self.mask_head(x))
        # (B*T, Q, 2, 2): row 0 = (x1, y1); row 1 = (px, py), the fraction of the room left to
        # the image edge that the box spans, so x1 <= x2 = x1 + (1 - x1) * px <= 1.
        cells = to_slices(self.box_head(torch.cat(box_in, dim=1)))
        xy1 = cells[:, :, 0]
        boxes = torch.cat([xy1, xy1 + (1 - xy1) * cells[:, :, 1]], dim=-1)
        tokens = to_slices(self.cls_head(torch.cat(cls_in, dim=1))).flatten(2)
        return dict(image_embedding=inputs[-1], aux_mask_logits=masks, aux_boxes=boxes,
                    aux_cls_tokens=tokens)

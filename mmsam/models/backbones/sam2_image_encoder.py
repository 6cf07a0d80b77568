"""SAM 2's Hiera image encoder (trunk + FPN neck) as an mmseg backbone, with official-checkpoint
loading, adapters and a depth embedding for 3D input."""
from typing import Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
from sam2.modeling.backbones.hieradet import Hiera, MultiScaleBlock
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from torch.utils.checkpoint import checkpoint as checkpoint_block

from mmsam.registry import MODELS
from ..utils.sam2_checkpoint import load_sam2_part

# The SAM 2.1 encoders (sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml); keys the yaml leaves
# out take Hiera's defaults, written out here (hiera_b+ sets only embed_dim and num_heads).
SAM2_ARCHS = {
    'hiera_t': dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                    window_pos_embed_bkg_spatial_size=(7, 7)),
    'hiera_s': dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2),
                    global_att_blocks=(7, 10, 13), window_pos_embed_bkg_spatial_size=(7, 7)),
    'hiera_b+': dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3),
                     global_att_blocks=(12, 16, 20), window_pos_embed_bkg_spatial_size=(14, 14)),
    'hiera_l': dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4),
                    global_att_blocks=(23, 33, 43), window_pos_embed_bkg_spatial_size=(7, 7),
                    window_spec=(8, 4, 16, 8)),
}
# Hiera's defaults and the neck of every SAM 2.1 yaml (d_model 256, sine position encoding with
# temperature 10000, top-down fusion into levels 2 and 3 only, nearest upsampling, scalp 1).
_ARCH_DEFAULTS = dict(window_spec=(8, 4, 14, 7), window_pos_embed_bkg_spatial_size=(14, 14),
                      q_pool=3, q_stride=(2, 2), dim_mul=2.0, head_mul=2.0, d_model=256,
                      fpn_top_down_levels=(2, 3), fpn_interp_model='nearest')
# A tiny Hiera for tests and CPU demos at 64-128 px (not an official arch): widths 16/32/64/128,
# 6 blocks, block 3 global, block 4 windowed with padding (window 6 on a 4 x 4 or 8 x 8 grid),
# neck width 32. FPN levels at 128 px: (B, 32, 32, 32), (B, 32, 16, 16), (B, 32, 8, 8).
SAM2_TINY_ARCH = dict(embed_dim=16, num_heads=1, stages=(1, 1, 3, 1), global_att_blocks=(3,),
                      window_spec=(8, 4, 6, 2), window_pos_embed_bkg_spatial_size=(4, 4),
                      d_model=32)
_REQUIRED = ('embed_dim', 'num_heads', 'stages', 'global_att_blocks')
_NECK_KEYS = ('d_model', 'fpn_top_down_levels', 'fpn_interp_model')


def resolve_sam2_arch(arch: Union[str, Dict]) -> Dict:
    """Turn an arch name or dict into the full Hiera + FpnNeck hyper-parameters.

    Args:
        arch (str | dict): ``'hiera_t'``, ``'hiera_s'``, ``'hiera_b+'``, ``'hiera_l'`` or a dict
            with ``embed_dim``, ``num_heads``, ``stages``, ``global_att_blocks`` and optionally
            ``window_spec``, ``window_pos_embed_bkg_spatial_size``, ``q_pool``, ``q_stride``,
            ``dim_mul``, ``head_mul`` (Hiera's arguments) and ``d_model``,
            ``fpn_top_down_levels``, ``fpn_interp_model`` (the neck's).

    Returns:
        dict: the hyper-parameters.
    """
    if isinstance(arch, str):
        if arch not in SAM2_ARCHS:
            raise KeyError(f'unknown SAM 2 arch {arch!r}; use one of {sorted(SAM2_ARCHS)} or a '
                           'dict')
        arch = SAM2_ARCHS[arch]
    arch = dict(arch)
    missing = [k for k in _REQUIRED if k not in arch]
    if missing:
        raise KeyError(f'SAM 2 arch dict {arch} lacks {missing}')
    unknown = set(arch) - set(_REQUIRED) - set(_ARCH_DEFAULTS)
    if unknown:
        raise KeyError(f'SAM 2 arch dict has unknown keys {sorted(unknown)}; allowed: '
                       f'{sorted(set(_REQUIRED) | set(_ARCH_DEFAULTS))}')
    hp = {**_ARCH_DEFAULTS, **arch}
    if len(hp['stages']) != len(hp['window_spec']):
        raise ValueError(f"SAM 2 arch: stages {hp['stages']} and window_spec "
                         f"{hp['window_spec']} need the same length")
    depth = sum(hp['stages'])
    if any(not 0 <= i < depth for i in hp['global_att_blocks']):
        raise ValueError(f"SAM 2 arch: global_att_blocks {hp['global_att_blocks']} must index "
                         f'the {depth} blocks')
    # Hiera pools q inside windows at the first block of stages 2.. (q_pool of them); sam2
    # divides by the window there, so those blocks cannot be global.
    pool_blocks = [sum(hp['stages'][:i]) for i in range(1, len(hp['stages']))][:hp['q_pool']]
    clash = sorted(set(pool_blocks) & set(hp['global_att_blocks']))
    if clash:
        raise ValueError(f"SAM 2 arch: global_att_blocks {hp['global_att_blocks']} include the "
                         f'q-pooling blocks {clash} (first block of a stage), which must be '
                         'windowed')
    return hp


@MODELS.register_module()
class SAM2ImageEncoder(ImageEncoder):
    """SAM 2's image encoder: ``sam2``'s ``Hiera`` trunk and ``FpnNeck``, unchanged inside.

    Parameter names equal ``sam2``'s (``trunk.*``, ``neck.*``), so the ``image_encoder.*``
    weights of an official SAM 2 / 2.1 or MedSAM2 file load directly. The neck's lowest-resolution
    level is dropped (``scalp=1``, as in every SAM 2 config). The high-resolution projections
    ``conv_s0``/``conv_s1`` belong to SAM 2's mask decoder, not here.

    Adapters (e.g. ``dict(type='LoRA', rank=4)`` on every block's ``attn.qkv``, or
    ``dict(type='HieraDepthBlockAdapter', adapter=dict(type='DConvAdapter'))`` with
    ``num_frames``) are injected into the trunk after construction; with ``frozen=True`` only
    adapter weights (and ``depth_embed``) train.

    Args:
        arch (str | dict): see :func:`resolve_sam2_arch`.
        img_size (int): input side length (SAM 2: 1024; MedSAM2: 512). The trunk's position
            table is resized (bicubic) to any size at run time, as in ``sam2``; the size must
            be a multiple of 4 * 2^q_pool (32) and give a token grid divisible by
            ``window_spec[0]``.
        frozen (bool): freeze all encoder weights except the adapters' (and ``depth_embed``).
        adapter (dict, optional): adapter config, built from MODELS; its ``inject(trunk)``
            returns the names of the parameters it added (relative to the trunk). It may read
            ``trunk.num_frames``.
        checkpoint (str, optional): official SAM 2 / MedSAM2 file (``{'model': state_dict}``)
            or an encoder-only state dict, loaded strictly by :meth:`init_weights`.
        num_frames (int, optional): T for 3D input: the batch is B * T slices, b-major (item
            b * T + t).
        depth_embed (bool): with ``num_frames``, add a trainable, zero-initialised
            ``depth_embed`` (1, T, 1, 1, embed_dim) after the trunk's position embedding,
            shared over positions (as ``SAMImageEncoder`` does).
        drop_path_rate (float): the trunk's stochastic depth (0 in SAM 2's inference configs).
        activation_checkpointing (bool): recompute each trunk block in the backward pass
            instead of storing its activations (only while gradients are computed).
    """

    def __init__(self, arch: Union[str, Dict] = 'hiera_t', img_size: int = 1024,
                 frozen: bool = True, adapter: Dict = None, checkpoint: str = None,
                 num_frames: int = None, depth_embed: bool = True, drop_path_rate: float = 0.0,
                 activation_checkpointing: bool = False, init_cfg=None):
        if init_cfg is not None:
            raise ValueError('SAM2ImageEncoder loads weights from `checkpoint`, not `init_cfg`')
        hp = resolve_sam2_arch(arch)
        stride = 4 * 2 ** hp['q_pool']
        if img_size % stride or (img_size // 4) % hp['window_spec'][0]:
            raise ValueError(f'SAM2ImageEncoder: img_size={img_size} must be a multiple of '
                             f"{stride} (4 * 2^q_pool) with img_size / 4 a multiple of "
                             f"window_spec[0]={hp['window_spec'][0]}")
        trunk_keys = set(_ARCH_DEFAULTS) - set(_NECK_KEYS) | set(_REQUIRED)
        trunk = Hiera(drop_path_rate=drop_path_rate,
                      **{k: tuple(v) if isinstance(v, list) else v
                         for k, v in hp.items() if k in trunk_keys})
        neck = FpnNeck(
            position_encoding=PositionEmbeddingSine(num_pos_feats=hp['d_model'], normalize=True,
                                                    scale=None, temperature=10000),
            d_model=hp['d_model'], backbone_channel_list=trunk.channel_list,
            fpn_top_down_levels=list(hp['fpn_top_down_levels']),
            fpn_interp_model=hp['fpn_interp_model'])
        super().__init__(trunk, neck, scalp=1)
        self.arch, self.img_size = hp, img_size
        self.embed_dim, self.out_channels = hp['embed_dim'], hp['d_model']
        self.feature_strides = tuple(4 * 2 ** i for i in range(len(trunk.channel_list) - 1))
        self.checkpoint, self.activation_checkpointing = checkpoint, activation_checkpointing
        if num_frames is not None and (int(num_frames) != num_frames or num_frames < 1):
            raise ValueError(f'num_frames must be a positive int or None, got {num_frames}')
        self.num_frames = trunk.num_frames = num_frames
        self.depth_embed = None
        depth_names = []
        if num_frames is not None and depth_embed:
            self.depth_embed = nn.Parameter(torch.zeros(1, num_frames, 1, 1, hp['embed_dim']))
            depth_names = ['depth_embed']
        added = MODELS.build(adapter).inject(trunk) if adapter else []
        wrong = [f'{i}: {type(b).__name__}' for i, b in enumerate(trunk.blocks)
                 if not isinstance(b, MultiScaleBlock)]
        if wrong:
            raise TypeError(f'SAM2ImageEncoder: adapter {adapter} replaced Hiera blocks by '
                            f'modules that are not Hiera blocks ({wrong[:3]}); for depth '
                            "adapters use dict(type='HieraDepthBlockAdapter', ...)")
        self.adapter_param_names = depth_names + [f'trunk.{name}' for name in added]
        self.frozen = frozen
        if frozen:
            trainable = set(self.adapter_param_names)
            for name, param in self.named_parameters():
                param.requires_grad = name in trainable

    def init_weights(self):
        """Load ``checkpoint`` (when given): its ``image_encoder.*`` keys, strictly."""
        if self.checkpoint is None:
            return
        load_sam2_part(self, self.checkpoint, 'image_encoder.', 'image_encoder',
                       ignore_missing=self.adapter_param_names,
                       marker_key='trunk.patch_embed.proj.weight',
                       hint="Check that the checkpoint matches the config's arch (hiera_t for "
                            'sam2.1_hiera_tiny.pt and MedSAM2 files, hiera_s, hiera_b+, hiera_l).')

    def _trunk_features(self, x: torch.Tensor) -> list:
        """Hiera's forward (patch embed, windowed position embedding, blocks), plus the depth
        embedding and activation checkpointing; returns the 4 stage outputs (B, C_i, h_i, w_i),
        highest resolution first."""
        trunk = self.trunk
        x = trunk.patch_embed(x)
        x = x + trunk._get_pos_embed(x.shape[1:3])
        if self.depth_embed is not None:
            n, h, w, e = x.shape
            x = (x.reshape(-1, self.num_frames, h, w, e) + self.depth_embed).reshape(n, h, w, e)
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        outputs = []
        for i, block in enumerate(trunk.blocks):
            x = checkpoint_block(block, x, use_reentrant=False) if recompute else block(x)
            if i in trunk.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Encode images.

        Args:
            x (Tensor): (B, 3, img_size, img_size) normalised images; with ``num_frames`` = T,
                B = cases * T slices, b-major.

        Returns:
            tuple[Tensor]: the FPN levels after scalp, ``sam2``'s ``backbone_fpn``:
            (B, d_model, S/4, S/4), (B, d_model, S/8, S/8), (B, d_model, S/16, S/16) for
            S = img_size; the last is SAM 2's ``vision_features`` (the image embedding).
        """
        if x.dim() != 4 or tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f'SAM2ImageEncoder expects (B, 3, {self.img_size}, {self.img_size}) '
                             f'input (img_size={self.img_size}), got {tuple(x.shape)}')
        if self.num_frames is not None and x.shape[0] % self.num_frames:
            raise ValueError(f'SAM2ImageEncoder: a batch of {x.shape[0]} slices is not '
                             f'divisible by num_frames={self.num_frames}; 3D input must be '
                             '(B * num_frames, C, H, W), b-major')
        no_grad = self.frozen and not self.adapter_param_names
        with torch.set_grad_enabled(torch.is_grad_enabled() and not no_grad):
            features, _ = self.neck(self._trunk_features(x))
        return tuple(features[:-self.scalp] if self.scalp else features)

    def position_encodings(self, features: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """SAM 2's ``vision_pos_enc`` of the given feature maps, as the neck computes them.

        Args:
            features (Sequence[Tensor]): maps (B, d_model, h_i, w_i), e.g. :meth:`forward`'s.

        Returns:
            tuple[Tensor]: (B, d_model, h_i, w_i) sine position encodings, in ``features``'
            dtype.
        """
        return tuple(self.neck.position_encoding(f).to(f.dtype) for f in features)

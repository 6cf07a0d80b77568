"""SAM's ViT image encoder as an mmseg backbone, with official-checkpoint loading and adapters."""
from functools import partial

import torch
import torch.nn as nn
from segment_anything.modeling import ImageEncoderViT
from torch.utils.checkpoint import checkpoint as checkpoint_block

from mmsam.registry import MODELS
from ..utils.sam_checkpoint import (POS_EMBED_RESIZE_MODES, load_part_state_dict, read_sam_part,
                                    resize_abs_pos_embed, resize_rel_pos)
from .fused_rel_pos_attention import FusedRelPosAttention

ATTN_IMPLS = ('fused', 'reference')

# The official SAM encoders (segment_anything/build_sam.py).
SAM_ARCHS = {
    'vit_b': dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    'vit_l': dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    'vit_h': dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}
_ARCH_DEFAULTS = dict(patch_size=16, window_size=14, out_chans=256, mlp_ratio=4.0)


def resolve_arch(arch):
    """Turn an arch name or dict into the full ``ImageEncoderViT`` hyper-parameters.

    Args:
        arch (str | dict): ``'vit_b'``, ``'vit_l'``, ``'vit_h'`` or a dict with ``embed_dim``,
            ``depth``, ``num_heads``, ``global_attn_indexes`` and optionally ``patch_size``,
            ``window_size``, ``out_chans``, ``mlp_ratio``.

    Returns:
        dict: the hyper-parameters.
    """
    if isinstance(arch, str):
        if arch not in SAM_ARCHS:
            raise KeyError(f'unknown SAM arch {arch!r}; use one of {sorted(SAM_ARCHS)} or a dict')
        arch = SAM_ARCHS[arch]
    required = {'embed_dim', 'depth', 'num_heads', 'global_attn_indexes'}
    if not required <= set(arch):
        raise KeyError(f'SAM arch dict {arch} lacks {sorted(required - set(arch))}')
    unknown = set(arch) - required - set(_ARCH_DEFAULTS)
    if unknown:
        raise KeyError(f'SAM arch dict has unknown keys {sorted(unknown)}')
    return {**_ARCH_DEFAULTS, **arch}


@MODELS.register_module()
class SAMImageEncoder(ImageEncoderViT):
    """SAM's ViT image encoder (segment-anything's ``ImageEncoderViT``, unchanged inside).

    Parameter names equal segment-anything's, so an official checkpoint's ``image_encoder.*``
    weights load directly. Adapters (e.g. ``dict(type='LoRA', rank=4)``) are injected after
    construction; with ``frozen=True`` only adapter weights train.

    Args:
        arch (str | dict): see :func:`resolve_arch`.
        img_size (int): input side length; SAM uses 1024, SAMed/H-SAM 512. Position tables of a
            checkpoint made for another size are resized when loading.
        in_channels (int): input channels.
        out_indices (Sequence[int]): blocks whose outputs are returned. The last block's
            output is returned after SAM's neck, i.e. the image embedding
            (B, out_chans, g, g) with ``g = img_size // patch_size`` (64 for SAM's 1024 and
            16-pixel patches); other blocks' outputs are returned as (B, embed_dim, g, g).
        frozen (bool): freeze all encoder weights except the adapter's (and ``depth_embed``).
        adapter (dict, optional): adapter config, built from MODELS; it must have
            ``inject(vit) -> list[str]`` returning the names of the parameters it added. It
            may read ``vit.num_frames`` and ``vit.embed_dim``.
        num_frames (int, optional): T for 3D input: the batch is B * T slices, b-major (item
            b * T + t). Adds a trainable, zero-initialised ``depth_embed`` (1, T, 1, 1, E)
            after ``pos_embed``, shared over positions (unless ``depth_embed=False``).
        depth_embed (bool): with ``num_frames``, add the depth embedding (MaskSAM's encoder
            DPosEmbed; False for its Table 4 rows B1-B4).
        with_neck_output (bool): every ``out_indices`` entry (the last one too) returns the
            raw block output (B, embed_dim, g, g), and the neck of the last block,
            (B, out_chans, g, g), is appended last.
        checkpoint (str, optional): official SAM/MedSAM file or an encoder-only state dict,
            loaded by :meth:`init_weights`.
        attn_impl (str): ``'fused'`` (default) computes attention with
            :class:`FusedRelPosAttention` (``scaled_dot_product_attention`` with the
            relative-position bias folded into q and k: no (HW)^2 bias, fast in bf16);
            ``'reference'`` keeps segment-anything's ``Attention``. Same parameters and
            results (within float rounding).
        activation_checkpointing (bool): recompute each block in the backward pass instead of
            storing its activations (saves memory when the encoder trains, e.g. ViT-H LoRA;
            costs about one extra forward). Only active when gradients are being computed.
        pos_embed_resize (str): how ``checkpoint``'s absolute position table is resized when
            it was made for another ``img_size``: ``'bicubic'`` (default) or ``'bilinear'``,
            as SAMed's and H-SAM's official ``build_sam.load_from`` resizes it (their
            paper-table configs use it), or ``'top_left'``: the table's top-left corner, as
            MaskSAM's official encoder crops it (an input smaller than 1024 sits in the
            top-left of SAM's frame). The relative-position tables of the global blocks are
            resized linearly in every mode, as the official loaders (and segment-anything's
            ``get_rel_pos`` at run time) do.
    """

    def __init__(self, arch='vit_b', img_size=1024, in_channels=3, out_indices=(-1,),
                 frozen=True, adapter=None, checkpoint=None, num_frames=None, depth_embed=True,
                 with_neck_output=False, attn_impl='fused', activation_checkpointing=False,
                 pos_embed_resize='bicubic', init_cfg=None):
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f'SAMImageEncoder: attn_impl={attn_impl!r} is not one of '
                             f'{ATTN_IMPLS}')
        if pos_embed_resize not in POS_EMBED_RESIZE_MODES:
            raise ValueError(f'SAMImageEncoder: pos_embed_resize={pos_embed_resize!r} is not one '
                             f'of {POS_EMBED_RESIZE_MODES}')
        hp = resolve_arch(arch)
        super().__init__(
            img_size=img_size, patch_size=hp['patch_size'], in_chans=in_channels,
            embed_dim=hp['embed_dim'], depth=hp['depth'], num_heads=hp['num_heads'],
            mlp_ratio=hp['mlp_ratio'], out_chans=hp['out_chans'], qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU, use_abs_pos=True,
            use_rel_pos=True, window_size=hp['window_size'],
            global_attn_indexes=tuple(hp['global_attn_indexes']))
        if init_cfg is not None:
            raise ValueError('SAMImageEncoder loads weights from `checkpoint`, not `init_cfg`')
        self.arch, self.patch_size = hp, hp['patch_size']
        self.out_channels = hp['out_chans']
        depth = hp['depth']
        self.out_indices = tuple(sorted({i % depth for i in out_indices}))
        if any(not -depth <= i < depth for i in out_indices):
            raise ValueError(f'out_indices {out_indices} out of range for depth {depth}')
        self.checkpoint, self.pos_embed_resize = checkpoint, pos_embed_resize
        self.attn_impl, self.activation_checkpointing = attn_impl, activation_checkpointing
        if attn_impl == 'fused':
            # Before the adapters: LoRA replaces attn.qkv inside whichever attention is there.
            for block in self.blocks:
                block.attn = FusedRelPosAttention(block.attn)
        self.embed_dim, self.with_neck_output = hp['embed_dim'], with_neck_output
        if num_frames is not None and (int(num_frames) != num_frames or num_frames < 1):
            raise ValueError(f'num_frames must be a positive int or None, got {num_frames}')
        self.num_frames = num_frames
        depth_names = []
        self.depth_embed = None
        if num_frames is not None and depth_embed:
            self.depth_embed = nn.Parameter(torch.zeros(1, num_frames, 1, 1, hp['embed_dim']))
            depth_names = ['depth_embed']
        # The adapter is injected after num_frames / depth_embed exist: it may read them.
        self.adapter_param_names = depth_names + (
            MODELS.build(adapter).inject(self) if adapter else [])
        self.frozen = frozen
        if frozen:
            adapter_names = set(self.adapter_param_names)
            for name, param in self.named_parameters():
                param.requires_grad = name in adapter_names

    def init_weights(self):
        """Load ``checkpoint`` (when given), resizing position tables to ``img_size``."""
        if self.checkpoint is None:
            return
        state = read_sam_part(self.checkpoint, 'image_encoder.', 'patch_embed.proj.weight')
        own = self.state_dict()
        state = dict(state)
        if 'pos_embed' in state and 'pos_embed' in own:
            state['pos_embed'] = resize_abs_pos_embed(state['pos_embed'], own['pos_embed'].shape[1:3],
                                                      self.pos_embed_resize)
        for key in state:
            if key.endswith(('rel_pos_h', 'rel_pos_w')) and key in own:
                state[key] = resize_rel_pos(state[key], own[key].shape[0])
        load_part_state_dict(self, state, self.checkpoint, 'image_encoder',
                             ignore_missing=self.adapter_param_names)

    def forward(self, x):
        """Encode images.

        Args:
            x (Tensor): (B, in_channels, img_size, img_size) normalised images; with
                ``num_frames`` = T, B = cases * T slices, b-major.

        Returns:
            tuple[Tensor]: one feature map per ``out_indices`` (see the class docstring), plus
            the neck output last when ``with_neck_output``.
        """
        if self.num_frames is not None and x.shape[0] % self.num_frames:
            raise ValueError(f'SAMImageEncoder: a batch of {x.shape[0]} slices is not '
                             f'divisible by num_frames={self.num_frames}; 3D input must be '
                             '(B * num_frames, C, H, W), b-major')
        no_grad = self.frozen and not self.adapter_param_names
        with torch.set_grad_enabled(torch.is_grad_enabled() and not no_grad):
            x = self.patch_embed(x)
            x = x + self.pos_embed
            if self.depth_embed is not None:
                n, h, w, e = x.shape
                x = (x.reshape(-1, self.num_frames, h, w, e) + self.depth_embed).reshape(
                    n, h, w, e)
            outs = []
            last = len(self.blocks) - 1
            recompute = self.activation_checkpointing and torch.is_grad_enabled()
            for i, block in enumerate(self.blocks):
                x = checkpoint_block(block, x, use_reentrant=False) if recompute else block(x)
                if i in self.out_indices:
                    feat = x.permute(0, 3, 1, 2)
                    outs.append(self.neck(feat) if i == last and not self.with_neck_output
                                else feat)
            if self.with_neck_output:
                outs.append(self.neck(x.permute(0, 3, 1, 2)))
        return tuple(outs)

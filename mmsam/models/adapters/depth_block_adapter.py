"""MaskSAM's encoder adapters: every ViT block gets a space adapter and a parallel MLP adapter."""
import torch.nn as nn
from segment_anything.modeling.image_encoder import Block, window_partition, window_unpartition

from mmsam.registry import MODELS

SPACE_ADAPTER_SITES = ('slices', 'windows')


class DepthAdaptedBlock(Block):
    """segment-anything's ViT ``Block`` with two depth adapters (MaskSAM).

    x = x + A_s(attn(norm1 x)), with window attention undone before A_s so the adapter sees
    whole (h, w) slices (the official block runs it on the windows, mixing windows and
    slices: ``space_adapter_on``); then x = x + mlp(n) + mlp_scale * A_m(n), n = norm2 x.
    The old block's children are adopted under their names, so checkpoint keys stay
    ``blocks.i.attn.qkv.weight`` etc.; the adapters add ``space_adapter.*``, ``mlp_adapter.*``.

    MaskSAM's official block (``ImageEncoderViTGlobalOutputAdapter3DTPosEmbedTFusionMiddleDWConv``)
    differs in the windowed blocks, each difference a switch:

    - ``norm_after_pad``: the window partition pads the raw tokens with zeros and ``norm1``
      runs after it, so the padding tokens attention sees are ``norm1(0)`` (its bias), not 0
      as in segment-anything's block;
    - ``space_adapter_on='windows'``: A_s runs on the window-partitioned, padded tokens
      (B * T * n_windows, window, window, D) before they are put back, so its ``(b, t)``
      regrouping takes consecutive windows for slices (it mixes windows and slices).

    Global blocks (window 0) are the same in both.

    Args:
        block (Block): the block to adapt (its modules are reused, not copied).
        space_adapter (nn.Module): A_s, called as ``A_s(x)`` on (B * T, h, w, D); with skip.
        mlp_adapter (nn.Module): A_m, without skip.
        mlp_scale (float): weight of A_m (MaskSAM: 0.5).
        norm_after_pad (bool): see above (official: True; mmsam's reading: False).
        space_adapter_on (str): ``'slices'`` (mmsam's reading: the whole slices) or ``'windows'``
            (official).
    """

    def __init__(self, block, space_adapter, mlp_adapter, mlp_scale=0.5, norm_after_pad=False,
                 space_adapter_on='slices'):
        nn.Module.__init__(self)
        if space_adapter_on not in SPACE_ADAPTER_SITES:
            raise ValueError(f'space_adapter_on must be one of {SPACE_ADAPTER_SITES}, got '
                             f'{space_adapter_on!r}')
        for name, child in block.named_children():
            setattr(self, name, child)
        self.window_size = block.window_size
        self.space_adapter, self.mlp_adapter = space_adapter, mlp_adapter
        self.mlp_scale = mlp_scale
        self.norm_after_pad, self.space_adapter_on = bool(norm_after_pad), space_adapter_on

    def forward(self, x):
        """Args: x (Tensor): (B * T, h, w, D), b-major. Returns: Tensor: the same shape."""
        shortcut = x
        windowed = self.window_size > 0
        if windowed and self.norm_after_pad:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
            x = self.norm1(x)
        else:
            x = self.norm1(x)
            if windowed:
                h, w = x.shape[1], x.shape[2]
                x, pad_hw = window_partition(x, self.window_size)
        x = self.attn(x)
        if windowed and self.space_adapter_on == 'windows':
            x = self.space_adapter(x)
        if windowed:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        if not (windowed and self.space_adapter_on == 'windows'):
            x = self.space_adapter(x)
        x = shortcut + x
        n = self.norm2(x)
        return x + self.mlp(n) + self.mlp_scale * self.mlp_adapter(n)


@MODELS.register_module()
class DepthBlockAdapter:
    """Injects :class:`DepthAdaptedBlock` into every block of a SAM ViT (MaskSAM's encoder).

    Used as ``SAMImageEncoder(num_frames=T, adapter=dict(type='DepthBlockAdapter'))``.

    Args:
        adapter (dict): config of both adapters, built from MODELS with ``embed_dims`` and
            ``num_frames`` taken from the encoder; ``skip`` is set here (True for the space
            adapter, False for the MLP one). ``DConvAdapter``, ``DMLPAdapter`` or
            ``BottleneckAdapter``.
        mlp_scale (float): weight of the parallel MLP adapter.
        norm_after_pad (bool), space_adapter_on (str): the official windowed-block order,
            see :class:`DepthAdaptedBlock` (MaskSAM's official code: True, ``'windows'``;
            mmsam's reading: False, ``'slices'``).
    """

    def __init__(self, adapter=dict(type='DConvAdapter'), mlp_scale=0.5, norm_after_pad=False,
                 space_adapter_on='slices'):
        if 'skip' in adapter:
            raise ValueError('DepthBlockAdapter sets skip itself (space adapter: True, MLP '
                             f'adapter: False); remove skip from adapter={adapter}')
        if space_adapter_on not in SPACE_ADAPTER_SITES:
            raise ValueError(f'DepthBlockAdapter space_adapter_on must be one of '
                             f'{SPACE_ADAPTER_SITES}, got {space_adapter_on!r}')
        self.adapter, self.mlp_scale = dict(adapter), mlp_scale
        self.norm_after_pad, self.space_adapter_on = norm_after_pad, space_adapter_on

    def inject(self, vit):
        """Replace ``vit.blocks[i]`` in place.

        Args:
            vit (nn.Module): a SAM ``ImageEncoderViT`` with ``num_frames`` and ``embed_dim``
                (as :class:`SAMImageEncoder` has).

        Returns:
            list[str]: names (relative to ``vit``) of the parameters the adapters added.
        """
        num_frames = getattr(vit, 'num_frames', None)
        if num_frames is None:
            raise ValueError('DepthBlockAdapter needs the number of slices per case: set '
                             'backbone.num_frames=T (SAMImageEncoder(num_frames=...))')
        embed_dim = getattr(vit, 'embed_dim', None) or vit.patch_embed.proj.out_channels
        added = []
        for i in range(len(vit.blocks)):
            space, mlp = (MODELS.build(dict(self.adapter, embed_dims=embed_dim,
                                            num_frames=num_frames, skip=skip))
                          for skip in (True, False))
            vit.blocks[i] = DepthAdaptedBlock(vit.blocks[i], space, mlp, self.mlp_scale,
                                              self.norm_after_pad, self.space_adapter_on)
            added += [f'blocks.{i}.{name}' for name, _ in vit.blocks[i].named_parameters()
                      if name.startswith(('space_adapter.', 'mlp_adapter.'))]
        return added

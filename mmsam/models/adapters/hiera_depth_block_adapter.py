"""MaskSAM-style depth adapters in SAM 2's Hiera blocks: a space adapter after attention and a
parallel MLP adapter, both mixing slices of one case only."""
import torch
from sam2.modeling.backbones.hieradet import MultiScaleBlock, do_pool
from sam2.modeling.backbones.utils import window_partition, window_unpartition

from mmsam.registry import MODELS


class DepthAdaptedHieraBlock(MultiScaleBlock):
    """``sam2``'s Hiera ``MultiScaleBlock`` with two depth adapters.

    x = shortcut + A_s(attn(norm1 x)), with window attention undone before A_s so the adapter
    sees whole (h, w) slices; then x = x + mlp(n) + mlp_scale * A_m(n), n = norm2 x. With both
    adapters giving zero (``zero_init``) the block equals the original. The old block's
    children are adopted under their names, so checkpoint keys stay ``blocks.i.attn.qkv.weight``
    etc.; the adapters add ``space_adapter.*`` and ``mlp_adapter.*``.

    Args:
        block (MultiScaleBlock): the block to adapt (its modules are reused, not copied).
        space_adapter (nn.Module): A_s, called as ``A_s(x)`` on (B * T, h, w, dim_out); with
            skip.
        mlp_adapter (nn.Module): A_m on (B * T, h, w, dim_out), without skip.
        mlp_scale (float): weight of A_m (MaskSAM: 0.5).
    """

    def __init__(self, block, space_adapter, mlp_adapter, mlp_scale=0.5):
        torch.nn.Module.__init__(self)
        for name, child in block.named_children():
            setattr(self, name, child)
        self.dim, self.dim_out = block.dim, block.dim_out
        self.window_size, self.q_stride = block.window_size, block.q_stride
        self.space_adapter, self.mlp_adapter = space_adapter, mlp_adapter
        self.mlp_scale = mlp_scale

    def forward(self, x):
        """Args: x (Tensor): (B * T, h, w, dim), b-major.
        Returns: Tensor: (B * T, h', w', dim_out), h' = h / 2 at a stage change."""
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = do_pool(self.proj(x), self.pool)
        window = self.window_size
        if window > 0:
            h, w = x.shape[1:3]
            x, pad_hw = window_partition(x, window)
        x = self.attn(x)
        if window > 0:
            if self.q_stride:
                # q pooling shrank the windows and the grid
                window = window // self.q_stride[0]
                h, w = shortcut.shape[1:3]
                pad_hw = (h + (window - h % window) % window, w + (window - w % window) % window)
            x = window_unpartition(x, window, pad_hw, (h, w))
        x = shortcut + self.drop_path(self.space_adapter(x))
        n = self.norm2(x)
        return x + self.drop_path(self.mlp(n) + self.mlp_scale * self.mlp_adapter(n))


@MODELS.register_module()
class HieraDepthBlockAdapter:
    """Injects :class:`DepthAdaptedHieraBlock` into every block of a Hiera trunk.

    Used as ``SAM2ImageEncoder(num_frames=T, adapter=dict(type='HieraDepthBlockAdapter',
    adapter=dict(type='DConvAdapter')))``, the SAM 2 counterpart of ``DepthBlockAdapter``.

    Args:
        adapter (dict): config of both adapters, built from MODELS with ``embed_dims`` (the
            block's ``dim_out``) and ``num_frames`` taken from the encoder; ``skip`` is set
            here (True for the space adapter, False for the MLP one). ``DConvAdapter``,
            ``DMLPAdapter`` or ``BottleneckAdapter``.
        mlp_scale (float): weight of the parallel MLP adapter.
    """

    def __init__(self, adapter=dict(type='DConvAdapter'), mlp_scale=0.5):
        if 'skip' in adapter:
            raise ValueError('HieraDepthBlockAdapter sets skip itself (space adapter: True, MLP '
                             f'adapter: False); remove skip from adapter={adapter}')
        self.adapter, self.mlp_scale = dict(adapter), mlp_scale

    def inject(self, trunk):
        """Replace ``trunk.blocks[i]`` in place.

        Args:
            trunk (nn.Module): a ``sam2`` ``Hiera`` with ``num_frames`` set (as
                ``SAM2ImageEncoder`` sets it).

        Returns:
            list[str]: names (relative to ``trunk``) of the parameters the adapters added.
        """
        num_frames = getattr(trunk, 'num_frames', None)
        if num_frames is None:
            raise ValueError('HieraDepthBlockAdapter needs the number of slices per case: set '
                             'backbone.num_frames=T (SAM2ImageEncoder(num_frames=...))')
        added = []
        for i, block in enumerate(trunk.blocks):
            if not isinstance(block, MultiScaleBlock):
                raise TypeError(f'HieraDepthBlockAdapter: trunk.blocks[{i}] is a '
                                f'{type(block).__name__}, not a Hiera MultiScaleBlock')
            space, mlp = (MODELS.build(dict(self.adapter, embed_dims=block.dim_out,
                                            num_frames=num_frames, skip=skip))
                          for skip in (True, False))
            trunk.blocks[i] = DepthAdaptedHieraBlock(block, space, mlp, self.mlp_scale)
            added += [f'blocks.{i}.{name}' for name, _ in trunk.blocks[i].named_parameters()
                      if name.startswith(('space_adapter.', 'mlp_adapter.'))]
        return added

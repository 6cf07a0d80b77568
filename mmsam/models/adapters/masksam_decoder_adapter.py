"""MaskSAM's adapters inside SAM's two-way transformer (the mask decoder)."""
import torch.nn as nn

from mmsam.registry import MODELS

# Sites of one two-way layer: after token self-attention, after token->image attention,
# parallel to the token MLP, after image->token attention (the image path).
LAYER_SITES = ('self_attn', 'cross_t2i', 'mlp', 'cross_i2t')


@MODELS.register_module()
class MaskSAMDecoderAdapter(nn.Module):
    """Depth adapters at every site of SAM's two-way transformer, applied by
    :func:`mmsam.models.utils.masked_two_way_transformer.two_way_transformer_forward`.

    Token sites use ``token_adapter`` on (N, tokens, D); the image->token site uses
    ``image_adapter`` on the keys (N, h * w, D) with the grid passed at call time. The MLP
    site has no skip and is scaled by ``mlp_scale``; the others have skip. N = B * T * Q
    ordered (b, t, q).

    Args:
        num_frames (int): T.
        embed_dims (int): the decoder width D (SAM: 256).
        token_adapter (dict): config for the token sites (MaskSAM: ``DMLPAdapter``).
        image_adapter (dict): config for the image site (MaskSAM: ``DConvAdapter``).
        mlp_scale (float): weight of the parallel MLP adapter.
        final_attn (bool): also adapt the final token->image attention (in MaskSAM's
            official code, not in the paper).
        depth (int): number of two-way layers (SAM: 2).
    """

    def __init__(self, num_frames, embed_dims=256, token_adapter=dict(type='DMLPAdapter'),
                 image_adapter=dict(type='DConvAdapter'), mlp_scale=0.5, final_attn=True,
                 depth=2):
        super().__init__()
        for cfg in (token_adapter, image_adapter):
            if 'skip' in cfg:
                raise ValueError('MaskSAMDecoderAdapter sets skip itself (False at the MLP '
                                 f'site, True elsewhere); remove skip from {cfg}')
        self.num_frames, self.embed_dims, self.mlp_scale = num_frames, embed_dims, mlp_scale

        def build(cfg, skip=True):
            return MODELS.build(dict(cfg, embed_dims=embed_dims, num_frames=num_frames,
                                     skip=skip))

        self.layers = nn.ModuleList(
            nn.ModuleDict(dict(self_attn=build(token_adapter),
                               cross_t2i=build(token_adapter),
                               mlp=build(token_adapter, skip=False),
                               cross_i2t=build(image_adapter)))
            for _ in range(depth))
        self.final_t2i = build(token_adapter) if final_attn else None

    def forward(self, x, site, layer=None, num_queries=1, hw=None):
        """Apply the adapter of one site.

        Args:
            x (Tensor): (N, L, D): tokens, or keys (L = h * w) at ``'cross_i2t'``.
            site (str): one of ``LAYER_SITES`` or ``'final_t2i'``.
            layer (int, optional): the two-way layer (not for ``'final_t2i'``).
            num_queries (int): Q.
            hw (tuple[int, int], optional): the image grid, used at ``'cross_i2t'`` only.

        Returns:
            Tensor: (N, L, D); for ``'mlp'`` the scaled branch to add, otherwise the adapted
            ``x`` (itself when ``final_attn`` is False at ``'final_t2i'``).
        """
        if site == 'final_t2i':
            return x if self.final_t2i is None else self.final_t2i(x, num_queries=num_queries)
        if site not in LAYER_SITES:
            raise KeyError(f'unknown decoder adapter site {site!r}; use one of '
                           f"{LAYER_SITES + ('final_t2i',)}")
        adapter = self.layers[layer][site]
        if site == 'cross_i2t':
            return adapter(x, num_queries=num_queries, hw=hw)
        out = adapter(x, num_queries=num_queries)
        return self.mlp_scale * out if site == 'mlp' else out

"""H-SAM's stage-1 decoder: SAM's mask decoder with the official block order as a switch."""
import torch

from mmsam.registry import MODELS
from .hsam_two_way_transformer import cross_first_two_way_forward
from .sam_mask_decoder import SAMMaskDecoder

BLOCK_ORDERS = ('cross_first', 'sam')


@MODELS.register_module()
class HSAMMaskDecoder(SAMMaskDecoder):
    """SAM's mask decoder (same weights and keys) whose two-way blocks run in H-SAM's order.

    The official H-SAM transformer (``transformer.py``'s ``TwoWayAttentionBlock``) runs
    token-to-image cross-attention BEFORE token self-attention; in block 0 the self-attention
    output then replaces the (already image-attended) queries with no residual. SAM runs
    self-attention first. Weights trained in one order do not work in the other (0.48 on the
    logits of the official fixture).

    Args:
        block_order (str): ``'cross_first'`` (official H-SAM) or ``'sam'``
            (segment-anything's order, as :class:`SAMMaskDecoder`).
        **kwargs: see :class:`SAMMaskDecoder`.
    """

    def __init__(self, block_order='cross_first', **kwargs):
        if block_order not in BLOCK_ORDERS:
            raise ValueError(f'HSAMMaskDecoder block_order must be one of {BLOCK_ORDERS}, '
                             f'got {block_order!r}')
        super().__init__(**kwargs)
        self.block_order = block_order

    def decode_tokens(self, image_embeddings, image_pe, sparse_embeddings, dense_embeddings,
                      token_mask=None, mask_mode='learnable', adapters=None, layout=None):
        """As :meth:`SAMMaskDecoder.decode_tokens`; the official order takes no token mask
        or adapters (H-SAM's stage 1 has neither)."""
        if self.block_order == 'sam':
            return super().decode_tokens(image_embeddings, image_pe, sparse_embeddings,
                                         dense_embeddings, token_mask, mask_mode, adapters,
                                         layout)
        if token_mask is not None or adapters is not None:
            raise ValueError("HSAMMaskDecoder(block_order='cross_first') takes no token_mask "
                             'or adapters')
        n = image_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(n, -1, -1), sparse_embeddings],
                           dim=1)
        src = image_embeddings + dense_embeddings
        b, c, h, w = src.shape
        hs, keys = cross_first_two_way_forward(self.transformer, src,
                                               image_pe.expand(n, -1, -1, -1), tokens)
        return hs, keys.transpose(1, 2).reshape(b, c, h, w)

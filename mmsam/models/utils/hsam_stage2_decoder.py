"""H-SAM's official stage-2 decoder (``MaskDecoder2_224`` / ``MaskDecoder2_512``)."""
import torch
import torch.nn as nn
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.mask_decoder import MLP

from mmsam.registry import MODELS
from .hsam_masked_attention import OFFICIAL_UNUSED_NORM_WIDTHS
from .hsam_two_way_transformer import HSAMTwoWayTransformer


@MODELS.register_module()
class HSAMStage2Decoder(nn.Module):
    """The second decoding stage as the official H-SAM builds it.

    Differences from SAM's decoder (each as the official code has it):

    - no IoU token: the tokens are the ``num_mask_tokens`` class tokens (plus prompts); the
      IoU head reads class token 0's output;
    - :class:`HSAMTwoWayTransformer`: the blocks run cross-attention first, both
      cross-attentions are :class:`HSAMMaskedAttention` without downsampling, multiplied by
      the stage-1 prior, and the token-to-image output goes through dropout (0.2);
    - the pixel decoder: SAM's two transposed convolutions to D/8 at 4x the grid,
      concatenated with stage 1's D/8 features (``skip_connect``), then two more transposed
      convolutions (with LayerNorm) to D/16 at 16x the grid (the input size for 16-pixel
      patches);
    - hypernetwork MLPs of ``hypernetwork_depth`` (5) layers ending at D/16.

    Args:
        transformer_dim (int): D.
        num_mask_tokens (int): classes including background.
        transformer_depth (int), transformer_mlp_dim (int), transformer_num_heads (int): the
            two-way transformer (official: 2, 2048, 8).
        iou_head_depth (int), iou_head_hidden_dim (int): official 3, 256.
        hypernetwork_depth (int): layers of each hypernetwork MLP (official 5).
        skip_connection (bool): the concatenated stage-1 skip and full-resolution upsampling
            (official); False: SAM's pixel decoder (1/4 resolution, D/8 hypernetwork outputs).
        dropout (float): transformer dropout (official 0.2).
        masked_attention_downsample_rate (int): official 1.
        unused_norm_widths (tuple[int]): see :class:`HSAMMaskedAttention`.
    """

    def __init__(self, transformer_dim=256, num_mask_tokens=9, transformer_depth=2,
                 transformer_mlp_dim=2048, transformer_num_heads=8, iou_head_depth=3,
                 iou_head_hidden_dim=256, hypernetwork_depth=5, skip_connection=True,
                 dropout=0.2, masked_attention_downsample_rate=1,
                 unused_norm_widths=OFFICIAL_UNUSED_NORM_WIDTHS):
        super().__init__()
        d = transformer_dim
        self.transformer_dim = d
        self.num_mask_tokens = num_mask_tokens
        self.transformer = HSAMTwoWayTransformer(
            transformer_depth, d, transformer_num_heads, transformer_mlp_dim, dropout,
            masked_attention_downsample_rate, unused_norm_widths=tuple(unused_norm_widths))
        self.mask_tokens = nn.Embedding(num_mask_tokens, d)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2), LayerNorm2d(d // 4),
            nn.GELU(), nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2), nn.GELU())
        self.skip_connection = skip_connection
        if skip_connection:
            self.skip_connect = nn.Sequential(
                nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
                LayerNorm2d(d // 8), nn.GELU(),
                nn.ConvTranspose2d(d // 8, d // 16, kernel_size=2, stride=2),
                LayerNorm2d(d // 16), nn.GELU())
        out = d // 16 if skip_connection else d // 8
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(d, d, out, hypernetwork_depth) for _ in range(num_mask_tokens))
        self.iou_prediction_head = MLP(d, iou_head_hidden_dim, num_mask_tokens, iou_head_depth)

    def decode_tokens(self, src, image_pe, sparse_embeddings, token_mask=None,
                      mask_mode='learnable'):
        """Run the transformer, the i-th image with the i-th prompt set.

        Args:
            src (Tensor): (B, D, h, w) stage-2 input: image embedding plus the dense prompt
                (and CMAttn's re-weighting).
            image_pe (Tensor): (1, D, h, w) or (B, D, h, w).
            sparse_embeddings (Tensor): (B, T, D) prompt tokens (T = 0 prompt-free).
            token_mask (Tensor, optional): (B, num_mask_tokens + T, h * w) prior.
            mask_mode (str): see :class:`HSAMMaskedAttention`.

        Returns:
            tuple[Tensor, Tensor]: tokens (B, num_mask_tokens + T, D), features (B, D, h, w).
        """
        b, c, h, w = src.shape
        tokens = torch.cat([self.mask_tokens.weight.unsqueeze(0).expand(b, -1, -1),
                            sparse_embeddings], dim=1)
        hs, keys = self.transformer(src, image_pe.expand(b, -1, -1, -1), tokens, token_mask,
                                    mask_mode)
        return hs, keys.transpose(1, 2).reshape(b, c, h, w)

    def masks_from_tokens(self, hs, src, skip=None):
        """Class logits and the "IoU" of class token 0.

        Args:
            hs (Tensor): (B, num_mask_tokens + T, D) tokens.
            src (Tensor): (B, D, h, w) transformer image features.
            skip (Tensor, optional): (B, D/8, 4h, 4w) stage 1's upscaled features (needed with
                ``skip_connection``).

        Returns:
            tuple[Tensor, Tensor]: masks (B, num_mask_tokens, 16h, 16w) (4h, 4w without the
            skip) and IoU predictions (B, num_mask_tokens).
        """
        pixels = self.output_upscaling(src)
        if self.skip_connection:
            if skip is None:
                raise ValueError('HSAMStage2Decoder(skip_connection=True) needs stage 1\'s '
                                 'upscaled features')
            pixels = self.skip_connect(torch.cat([pixels, skip], dim=1))
        hyper_in = torch.stack([mlp(hs[:, i]) for i, mlp in
                                enumerate(self.output_hypernetworks_mlps)], dim=1)
        b, c, h, w = pixels.shape
        masks = (hyper_in @ pixels.reshape(b, c, h * w)).reshape(b, -1, h, w)
        return masks, self.iou_prediction_head(hs[:, 0])

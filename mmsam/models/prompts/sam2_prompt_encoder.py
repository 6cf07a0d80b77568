"""SAM 2's prompt encoder as a registered component that loads the official weights."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from sam2.modeling.sam.prompt_encoder import PromptEncoder

from mmsam.registry import MODELS
from ..utils.sam2_checkpoint import load_sam2_part

BOX_CORNER_LABELS = (2, 3)  # SAM's top-left / bottom-right corner point labels


@MODELS.register_module()
class SAM2PromptEncoder(PromptEncoder):
    """``sam2``'s ``PromptEncoder`` with boxes embedded the way SAM 2 embeds them.

    SAM 2 never calls its prompt encoder with ``boxes``: ``SAM2ImagePredictor`` and
    ``SAM2Base`` turn a box into two corner points (labels 2 and 3) placed before the clicks,
    and the points always get SAM's padding point (label -1). :meth:`forward` does the same
    with mmsam's heads' ``boxes`` argument, so a box-prompted head gives SAM 2's tokens:
    (corner, corner, clicks..., padding).

    Args:
        embed_dim (int): prompt width (SAM 2: 256, the neck's ``d_model``).
        img_size (int): the encoder's input side (SAM 2: 1024).
        backbone_stride (int): the image embedding's stride (SAM 2: 16).
        mask_in_chans (int): hidden channels of the mask-prompt downscaler (SAM 2: 16).
        frozen (bool): freeze all weights.
        checkpoint (str, optional): official SAM 2 / MedSAM2 file (``sam_prompt_encoder.*``),
            loaded strictly by :meth:`init_weights`.
    """

    def __init__(self, embed_dim: int = 256, img_size: int = 1024, backbone_stride: int = 16,
                 mask_in_chans: int = 16, frozen: bool = False,
                 checkpoint: Optional[str] = None):
        if img_size % backbone_stride:
            raise ValueError(f'SAM2PromptEncoder: img_size={img_size} is not a multiple of '
                             f'backbone_stride={backbone_stride}')
        grid = img_size // backbone_stride
        super().__init__(embed_dim=embed_dim, image_embedding_size=(grid, grid),
                         input_image_size=(img_size, img_size), mask_in_chans=mask_in_chans,
                         activation=nn.GELU)
        self.checkpoint = checkpoint
        if frozen:
            self.requires_grad_(False)

    def init_weights(self) -> None:
        """Load ``checkpoint`` when given."""
        if self.checkpoint is not None:
            load_sam2_part(self, self.checkpoint, 'sam_prompt_encoder.',
                           marker_key='no_mask_embed.weight',
                           hint='Check embed_dim and mask_in_chans against the file.')

    def forward(self, points: Optional[Tuple[torch.Tensor, torch.Tensor]],
                boxes: Optional[torch.Tensor], masks: Optional[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embed prompts as SAM 2 does.

        Args:
            points (tuple[Tensor, Tensor], optional): (B, N, 2) x, y input pixels and (B, N)
                labels (1 foreground, 0 background, -1 padding).
            boxes (Tensor, optional): (B, 4) x0, y0, x1, y1 input pixels, embedded as two
                corner points before the clicks.
            masks (Tensor, optional): (B, 1, 4g, 4g) mask-prompt logits.

        Returns:
            tuple[Tensor, Tensor]: sparse (B, T, C) and dense (B, C, g, g) embeddings.
        """
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            labels = torch.tensor(BOX_CORNER_LABELS, device=boxes.device).expand(
                len(corners), 2)
            if points is not None:
                labels = torch.cat([labels.to(points[1].dtype), points[1]], dim=1)
                corners = torch.cat([corners, points[0].to(corners.dtype)], dim=1)
            points = (corners, labels)
        return super().forward(points=points, boxes=None, masks=masks)

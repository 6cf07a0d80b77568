"""SAM's prompt encoder as a registered component that loads the official weights."""
import torch.nn as nn
from segment_anything.modeling import PromptEncoder

from mmsam.registry import MODELS
from ..utils.sam_checkpoint import load_part_state_dict, read_sam_part


@MODELS.register_module()
class SAMPromptEncoder(PromptEncoder):
    """segment-anything's ``PromptEncoder`` with the image geometry given as in the encoder.

    Args:
        embed_dim (int): prompt embedding width (SAM: 256; equals the encoder's ``out_chans``).
        img_size (int): input side length of the image encoder.
        patch_size (int): the encoder's patch size; the embedding grid is img_size / patch_size.
        mask_in_chans (int): hidden channels of the mask-prompt downscaler (SAM: 16).
        frozen (bool): freeze all weights.
        checkpoint (str, optional): official SAM/MedSAM file or a prompt-encoder state dict,
            loaded by :meth:`init_weights`.
    """

    def __init__(self, embed_dim=256, img_size=1024, patch_size=16, mask_in_chans=16,
                 frozen=False, checkpoint=None):
        grid = img_size // patch_size
        super().__init__(embed_dim=embed_dim, image_embedding_size=(grid, grid),
                         input_image_size=(img_size, img_size), mask_in_chans=mask_in_chans,
                         activation=nn.GELU)
        self.checkpoint = checkpoint
        if frozen:
            self.requires_grad_(False)

    def init_weights(self):
        """Load ``checkpoint`` when given."""
        if self.checkpoint is not None:
            state = read_sam_part(self.checkpoint, 'prompt_encoder.', 'no_mask_embed.weight')
            load_part_state_dict(self, state, self.checkpoint, 'prompt_encoder')

"""H-SAM's prompt encoder: SAM's with 11 point embeddings."""
import torch.nn as nn

from mmsam.registry import MODELS
from ..utils.sam_checkpoint import load_part_state_dict, read_sam_part
from .sam_prompt_encoder import SAMPromptEncoder


@MODELS.register_module()
class HSAMPromptEncoder(SAMPromptEncoder):
    """:class:`SAMPromptEncoder` with ``num_point_embeddings`` point embeddings.

    The official H-SAM prompt encoder has 11 ("9 classes point + 2 box corners"); the model
    runs prompt-free, so they are never read, but they are in its files and its parameter
    count. Loading a SAM checkpoint fills the first 4 (as the official ``load_from``); the
    others keep their initial values.

    Args:
        num_point_embeddings (int): official 11.
        **kwargs: see :class:`SAMPromptEncoder`.
    """

    def __init__(self, num_point_embeddings=11, **kwargs):
        super().__init__(**kwargs)
        self.num_point_embeddings = num_point_embeddings
        self.point_embeddings = nn.ModuleList(
            nn.Embedding(1, self.embed_dim) for _ in range(num_point_embeddings))

    def init_weights(self):
        """Load ``checkpoint`` when given; point embeddings the file lacks stay as they are."""
        if self.checkpoint is None:
            return
        state = read_sam_part(self.checkpoint, 'prompt_encoder.', 'no_mask_embed.weight')
        extra = [k for k in self.state_dict() if k.startswith('point_embeddings.')
                 and k not in state]
        load_part_state_dict(self, state, self.checkpoint, 'prompt_encoder',
                             ignore_missing=extra)

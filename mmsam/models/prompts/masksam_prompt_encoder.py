"""SAM's prompt encoder placed in a larger SAM frame (MaskSAM's official "top-left canvas")."""
import torch

from mmsam.registry import MODELS
from .sam_prompt_encoder import SAMPromptEncoder


@MODELS.register_module()
class MaskSAMPromptEncoder(SAMPromptEncoder):
    """:class:`SAMPromptEncoder` whose coordinates are those of a ``canvas_size`` frame.

    MaskSAM's official code keeps SAM's 1024 x 1024 frame when the encoder reads a smaller
    patch (Synapse 256, AMOS 512): the patch sits in the frame's top-left corner. Box and point
    coordinates (pixels of the encoder input) are therefore normalised by the canvas, not by
    the input, and the dense positional encoding is the top-left (g x g) corner of the
    canvas's grid (``get_dense_pe(size=(64, 64))`` in the official code). With
    ``canvas_size=None`` (or equal to ``img_size``) it is :class:`SAMPromptEncoder` exactly,
    mmsam's reading (the patch fills SAM's frame). No parameter depends on the canvas, so
    weights load either way.

    Args:
        canvas_size (int, optional): side of SAM's frame in input pixels (official: 1024).
        **kwargs: :class:`SAMPromptEncoder` arguments (``img_size`` is the encoder input).
    """

    def __init__(self, canvas_size=None, **kwargs):
        super().__init__(**kwargs)
        img_size = self.image_embedding_size[0] * kwargs.get('patch_size', 16)
        canvas = img_size if canvas_size is None else int(canvas_size)
        if canvas < img_size:
            raise ValueError(f'MaskSAMPromptEncoder: canvas_size={canvas} is smaller than the '
                             f'encoder input {img_size}; the input must fit in the canvas')
        self.canvas_size, self.img_size = canvas, img_size
        # box / point prompts are normalised by input_image_size (segment-anything)
        self.input_image_size = (canvas, canvas)
        self.canvas_grid = canvas // kwargs.get('patch_size', 16)

    def get_dense_pe(self):
        """The positional encoding of the g x g embedding grid inside the canvas.

        Returns:
            Tensor: (1, C, g, g): cell (i, j) encodes ((j + 0.5) / G, (i + 0.5) / G), G the
            canvas grid (segment-anything's own when the input fills the canvas).
        """
        h, w = self.image_embedding_size
        device = self.pe_layer.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / self.canvas_grid
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / self.canvas_grid
        coords = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1)  # (h, w, (x, y))
        return self.pe_layer._pe_encoding(coords).permute(2, 0, 1)[None]

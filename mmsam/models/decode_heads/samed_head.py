"""SAMed's head: SAM's mask decoder run prompt-free with one mask token per class."""
from mmsam.registry import MODELS
from ..utils.ndimage_zoom import zoom_nearest
from .sam_decode_head import SAMDecodeHead

CLASS_TOKEN_PARTS = ('mask_tokens', 'output_hypernetworks_mlps', 'iou_prediction_head')
LOSS_LABEL_RESIZES = ('interpolate', 'zoom')


def reset_class_token_parameters(decoder):
    """Re-initialise a SAM decoder's per-class parts to PyTorch's fresh-module values.

    SAMed's and H-SAM's official loaders skip every checkpoint key containing
    :data:`CLASS_TOKEN_PARTS` (SAM's 4 ambiguity tokens mean nothing for organ classes), so
    the mask tokens, their hypernetwork MLPs and the IoU head start random; the two-way
    transformer, the pixel decoder and the IoU token keep SAM's weights.

    Args:
        decoder (SAMMaskDecoder): modified in place.
    """
    for part in CLASS_TOKEN_PARTS:
        for module in getattr(decoder, part).modules():
            if hasattr(module, 'reset_parameters'):
                module.reset_parameters()


@MODELS.register_module()
class SAMedHead(SAMDecodeHead):
    """Prompt-free SAM mask decoder with ``num_classes`` mask tokens (background included).

    The sparse prompt is empty and the dense prompt is SAM's learned no-mask embedding, so the
    decoder sees only the image embedding. Mask token k predicts the logits of class k, so the
    decoder is built with ``num_multimask_outputs = num_classes - 1`` (SAMed's
    "num_classes + 1 tokens" with num_classes counting organs only). The logits are at 1/4 of
    the input (128 x 128 for a 512 input) and are upsampled for prediction.

    Args:
        num_classes (int): classes including background (Synapse: 9).
        prompt_encoder (dict), mask_decoder (dict), loss_decode: see :class:`SAMDecodeHead`;
            ``mask_decoder.num_multimask_outputs`` is set here from ``num_classes``.
        reinit_class_tokens (bool): after loading SAM's decoder, re-initialise the mask
            tokens, hypernetworks and IoU head (:func:`reset_class_token_parameters`, as the
            official code); False keeps SAM's first 4 tokens' weights.
        loss_label_resize (str): how the labels are brought to the logits' resolution for
            the loss: ``'interpolate'`` (``F.interpolate(mode='nearest')``: pixel j reads
            ``floor(j * H / h)``) or ``'zoom'`` (``scipy.ndimage.zoom(order=0)``, as the
            official datasets make ``low_res_label``: pixel j reads
            ``floor(j * (H - 1) / (h - 1) + 0.5)``; :func:`zoom_nearest`). Both are nearest
            neighbour on different grids: at 512 -> 128 they read other input pixels at 97%
            of the positions, so labels differ along every border.
    """

    def __init__(self, num_classes, prompt_encoder, mask_decoder, loss_decode,
                 reinit_class_tokens=True, loss_label_resize='interpolate', **kwargs):
        if loss_label_resize not in LOSS_LABEL_RESIZES:
            raise ValueError(f'SAMedHead: loss_label_resize={loss_label_resize!r}; expected '
                             f"one of {LOSS_LABEL_RESIZES} ('zoom': the official "
                             'scipy zoom(order=0) labels)')
        if 'num_multimask_outputs' in mask_decoder:
            raise ValueError('SAMedHead sets mask_decoder.num_multimask_outputs from '
                             'num_classes; remove it from the config')
        mask_decoder = dict(mask_decoder, num_multimask_outputs=num_classes - 1)
        super().__init__(num_classes, prompt_encoder, mask_decoder, loss_decode, **kwargs)
        self.reinit_class_tokens = reinit_class_tokens
        self.loss_label_resize = loss_label_resize

    def init_weights(self):
        """Load the SAM parts' checkpoints, then re-initialise the class-token parts."""
        super().init_weights()
        if self.reinit_class_tokens and self.mask_decoder.checkpoint is not None:
            reset_class_token_parameters(self.mask_decoder)

    def resize_labels(self, batch_data_samples, size):
        """Stack the ground-truth labels at ``size`` by ``loss_label_resize``: (B, h, w) long."""
        if self.loss_label_resize == 'interpolate':
            return super().resize_labels(batch_data_samples, size)
        return zoom_nearest(self._stack_batch_gt(batch_data_samples)[:, 0], size).long()

    def forward(self, inputs, batch_data_samples=None):
        """Decode class logits.

        Args:
            inputs (tuple[Tensor]): encoder features; ``inputs[-1]`` is the (B, C, h, w)
                image embedding.
            batch_data_samples: unused (no prompts).

        Returns:
            Tensor: (B, num_classes, 4h, 4w) logits.
        """
        embedding, high_res = self.image_features(inputs)
        sparse, dense = self.prompt_free_embeddings(embedding)
        masks, _ = self.decode_masks(embedding, self.prompt_encoder.get_dense_pe(), sparse,
                                     dense, high_res)
        return masks

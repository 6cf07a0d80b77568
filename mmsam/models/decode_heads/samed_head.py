"""SAMed's head: SAM's mask decoder run prompt-free with one mask token per class."""
import torch

from mmsam.registry import MODELS
from ..utils.ndimage_zoom import zoom_nearest
from .box_prompt_head import BoxPromptHead, has_interactive_prompts
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
        click_refinement (bool): off by default. When on, a sample whose metainfo holds
            clicks (``prompt_points`` (N, 2) x, y in pixels of the loaded image with
            ``prompt_point_labels`` (N,)) and ``prompt_class`` (int, the class they refine) is
            decoded a second time on the same image embedding with those prompts (plus
            ``prompt_mask_logits``, the class's previous (4h, 4w) logits, and
            ``prompt_box`` where present) through SAM's prompt encoder, and class k's logits
            are replaced by mask token k's output of that call; the other classes keep the
            prompt-free logits (:meth:`refine_with_clicks`).
    """

    def __init__(self, num_classes, prompt_encoder, mask_decoder, loss_decode,
                 reinit_class_tokens=True, loss_label_resize='interpolate',
                 click_refinement=False, **kwargs):
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
        self.click_refinement = bool(click_refinement)

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
            batch_data_samples (list[SegDataSample], optional): read only with
                ``click_refinement`` (the clicks of :meth:`refine_with_clicks`).

        Returns:
            Tensor: (B, num_classes, 4h, 4w) logits.
        """
        embedding, high_res = self.image_features(inputs)
        sparse, dense = self.prompt_free_embeddings(embedding)
        masks, _ = self.decode_masks(embedding, self.prompt_encoder.get_dense_pe(), sparse,
                                     dense, high_res)
        if self.click_refinement and batch_data_samples is not None:
            masks = self.refine_with_clicks(masks, embedding, high_res, batch_data_samples)
        return masks

    def refine_with_clicks(self, masks, embedding, high_res, batch_data_samples):
        """Replace each clicked sample's refined class by a prompted decode of its embedding.

        The prompts are read and scaled to the network input as the box-prompted heads read
        them (:meth:`BoxPromptHead.sample_prompts` and :meth:`BoxPromptHead.dense_prompt_embedding`,
        called on this head); points without a box get SAM's padding point. Mask token k is
        class k's, so the refined class's logits are token ``prompt_class``'s output.

        Args:
            masks (Tensor): (B, num_classes, 4h, 4w) prompt-free logits.
            embedding (Tensor): (B, C, h, w) the decoder's image embedding.
            high_res (list[Tensor] | None): SAM 2's high-resolution features, batch first.
            batch_data_samples (list[SegDataSample]): prompts in the metainfo.

        Returns:
            Tensor: (B, num_classes, 4h, 4w) logits, other samples and classes unchanged.
        """
        refined = None
        for i, sample in enumerate(batch_data_samples):
            if not has_interactive_prompts(sample.metainfo):
                continue
            k = self._prompt_class(sample)
            points, box, mask = BoxPromptHead.sample_prompts(self, sample, embedding.device)
            sparse, _ = self.prompt_encoder(points=points, boxes=box, masks=None)
            dense = BoxPromptHead.dense_prompt_embedding(self, mask, embedding.device)
            one_high_res = None if high_res is None else [f[i:i + 1] for f in high_res]
            prompted, _ = self.decode_masks(embedding[i:i + 1], self.prompt_encoder.get_dense_pe(),
                                            sparse, dense, one_high_res)
            refined = masks.clone() if refined is None else refined
            refined[i, k] = prompted[0, k]
        return masks if refined is None else refined

    def _prompt_class(self, sample):
        """The class a sample's clicks refine (metainfo ``prompt_class``), checked: int."""
        meta = sample.metainfo
        k = meta.get('prompt_class')
        if k is None:
            raise KeyError(f'SAMedHead: the sample of {meta.get("img_path")} has clicks but no '
                           'prompt_class (the class they refine); add it to the metainfo')
        k = int(torch.as_tensor(k).reshape(()))
        if not 0 <= k < self.num_classes:
            raise ValueError(f'SAMedHead: the sample of {meta.get("img_path")} has '
                             f'prompt_class={k}; expected 0..{self.num_classes - 1}')
        return k

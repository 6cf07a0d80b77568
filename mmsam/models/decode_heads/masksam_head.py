"""MaskSAM's head: auto-generated box and mask prompts, SAM's decoder with depth adapters, and
mask classification (one mask and one class distribution per query)."""
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsam.registry import MODELS
from ..utils.box_ops import masks_to_boxes_normalized
from .sam_decode_head import SAMDecodeHead

PROMPT_MODES = ('mask', 'box', 'mask_box', 'mask_avg_box')
BOX_PIXEL_GRIDS = ('encoder_input', 'patch')
MASK_POSTPROCESS = ('direct', 'sam')
SAM2_UNSUPPORTED = (
    'MaskSAMHead runs on SAM 1 only, not on SAM 2 (mask_decoder=SAM2MaskDecoder): its prompts '
    'come from MaskSAMPromptGenerator, which decodes the ViT encoder\'s raw block outputs '
    '(out_indices, all at the embedding grid, plus the neck output) and passes the neck output '
    'on as the image embedding; SAM 2\'s Hiera encoder gives FPN levels at three resolutions '
    'instead, and SAM 2\'s decoder also needs no_mem_embed and its high-resolution features. '
    'Use SAMImageEncoder with SAMMaskDecoder / SAMPromptEncoder (see configs/README.md, '
    '"Heads on SAM 2")')


def semantic_scores(cls_logits, mask_logits):
    """Per-class scores of a mask-classification output (MaskFormer's semantic inference).

    Args:
        cls_logits (Tensor): (N, Q, C + 1) logits, the last class being "no object".
        mask_logits (Tensor): (N, Q, H, W) logits.

    Returns:
        Tensor: (N, C, H, W), ``sum_q softmax(cls)[q, c] * sigmoid(mask)[q]``.
    """
    probs = cls_logits.softmax(dim=-1)[..., :-1]
    return torch.einsum('nqc,nqhw->nchw', probs, mask_logits.sigmoid())


def slice_targets(labels, num_classes):
    """One target per class present in each slice, background included (MaskSAM).

    Args:
        labels (Tensor): (N, H, W) long class ids.
        num_classes (int): C; ids outside [0, C) are ignored pixels.

    Returns:
        list[dict]: per slice ``labels`` (K,) long, ``masks`` (K, H, W) bool and ``boxes``
        (K, 4) normalised xyxy.
    """
    targets = []
    for label in labels:
        present = [c for c in torch.unique(label).tolist() if 0 <= c < num_classes]
        classes = torch.tensor(present, dtype=torch.long, device=label.device)
        masks = label[None] == classes[:, None, None]
        targets.append(dict(labels=classes, masks=masks,
                            boxes=masks_to_boxes_normalized(masks)))
    return targets


@MODELS.register_module()
class MaskSAMHead(SAMDecodeHead):
    """MaskSAM's mask-classification head on SAM's prompt encoder and mask decoder.

    Reads the output of :class:`MaskSAMPromptGenerator` for N_s = B*T slices (b-major) and Q
    queries per slice. For every (slice, query) item (order (b*T + t)*Q + q):

    1. prompts from the generator (no gradient through them): the auxiliary mask thresholded at
       ``mask_threshold`` (a mask prompt, nearest-resized to SAM's 4g x 4g mask input) and a
       box prompt, by ``prompt_mode``: ``'mask'`` the box of the binary mask (Table 4 B1),
       ``'box'`` the learned box only (B2), ``'mask_box'`` mask + learned box (B3),
       ``'mask_avg_box'`` mask + the average of the learned box and the mask's box (B4-B9).
       Boxes are floored to whole pixels (``box_pixel_grid``): of the encoder input
       (``'encoder_input'``), or of the input patch and then scaled to the encoder input
       (``'patch'``, the official code: ACDC's stem upsamples 256 -> 1024 and the official
       code floors at 256, then ``ResizeLongestSide(1024).apply_boxes`` scales by 4);
    2. SAM's prompt encoder; the sparse tokens get one more token, the learnable global class
       token plus the query's auxiliary class token;
    3. SAM's mask decoder (image embedding repeated Q times) with the ``decoder_adapter``
       (DMLP on tokens, DConv on the image path) and a zero-initialised depth positional
       embedding (T, C, g, g) added to SAM's image PE;
    4. mask token 0 gives the query's mask at 4g, refined to the input size by
       :class:`MaskRefine3D` (``refine``; None: bilinear), the class token's output gives
       C + 1 class logits (``cls_embed``).

    The semantic output is ``sum_q softmax(cls)[q, :C] * sigmoid(mask_q)`` (probabilities, so
    ``predicts_probabilities`` is True). SAM's modules keep their official keys; the head's own
    parameters live outside them, so checkpoints load strictly.

    Args:
        num_classes (int): C, classes including background.
        num_frames (int): T, slices per patch (the encoder's ``num_frames``).
        prompt_encoder (dict), mask_decoder (dict): SAM's modules (frozen in MaskSAM).
        num_queries (int): Q, at least C to train (official: 24, ACDC 8); fewer warns.
        decoder_adapter (dict, optional): :class:`MaskSAMDecoderAdapter`; None: plain SAM.
        depth_pos_embed (bool): add the depth positional embedding to the image PE.
        prompt_mode (str): see above.
        mask_threshold (float): probability threshold of the auxiliary masks.
        box_pixel_grid (str): ``'patch'`` (official) or ``'encoder_input'`` (mmsam's
            reading), see above; the same where the stem does not upsample.
        mask_postprocess (str): how the decoder's (refined) masks reach the patch size:
            ``'direct'``, one bilinear resize when the sizes differ; ``'sam'``, SAM's
            ``postprocess_masks`` as the official ACDC code calls it: bilinear up to the
            encoder input (1024), then bilinear down to the patch (256), a slight blur.
        refine (dict, optional): :class:`MaskRefine3D` config (``num_queries`` and
            ``num_frames`` are filled in).
        loss_decode (dict): :class:`MaskClassificationCriterion` (``num_classes`` filled in).
    """

    predicts_probabilities = True

    def __init__(self, num_classes, num_frames, prompt_encoder, mask_decoder, num_queries=24,
                 decoder_adapter=dict(type='MaskSAMDecoderAdapter'), depth_pos_embed=True,
                 prompt_mode='mask_avg_box', mask_threshold=0.5, box_pixel_grid='patch',
                 mask_postprocess='direct',
                 refine=dict(type='MaskRefine3D', hidden=64, upsample=4),
                 loss_decode=dict(type='MaskClassificationCriterion'), **kwargs):
        if num_queries < num_classes:
            # the official code builds such networks (its fixture does); training then leaves
            # some present classes unmatched in slices that hold more than Q of them
            warnings.warn(f'MaskSAMHead: num_queries={num_queries} < num_classes={num_classes}: '
                          'a slice with more classes than queries cannot match them all; set '
                          'num_queries >= num_classes to train', stacklevel=2)
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f'MaskSAMHead prompt_mode must be one of {PROMPT_MODES}, got '
                             f'{prompt_mode!r}')
        if box_pixel_grid not in BOX_PIXEL_GRIDS:
            raise ValueError(f'MaskSAMHead box_pixel_grid must be one of {BOX_PIXEL_GRIDS}, '
                             f'got {box_pixel_grid!r}')
        if mask_postprocess not in MASK_POSTPROCESS:
            raise ValueError(f'MaskSAMHead mask_postprocess must be one of {MASK_POSTPROCESS}, '
                             f'got {mask_postprocess!r}')
        self.box_pixel_grid, self.mask_postprocess = box_pixel_grid, mask_postprocess
        loss_decode = dict(loss_decode)
        loss_decode.setdefault('num_classes', num_classes)
        super().__init__(num_classes, prompt_encoder, mask_decoder, loss_decode, **kwargs)
        if hasattr(self.mask_decoder, 'prepare_features'):
            raise ValueError(SAM2_UNSUPPORTED)
        self.num_frames, self.num_queries = int(num_frames), int(num_queries)
        self.prompt_mode, self.mask_threshold = prompt_mode, float(mask_threshold)
        width = self.prompt_encoder.embed_dim
        grid = tuple(self.prompt_encoder.image_embedding_size)
        self.cls_token = nn.Embedding(1, width)
        self.cls_embed = nn.Linear(width, num_classes + 1)
        self.depth_pe = (nn.Parameter(torch.zeros(self.num_frames, width, *grid))
                         if depth_pos_embed else None)
        self.decoder_adapter = None
        if decoder_adapter is not None:
            self.decoder_adapter = MODELS.build(dict(
                decoder_adapter, num_frames=self.num_frames, embed_dims=width,
                depth=len(self.mask_decoder.transformer.layers)))
        self.refine = None
        if refine is not None:
            self.refine = MODELS.build(dict(refine, num_queries=self.num_queries,
                                            num_frames=self.num_frames))

    def build_prompts(self, aux_mask_logits, aux_boxes):
        """SAM prompts of every (slice, query) item, and the box the box losses supervise.

        Args:
            aux_mask_logits (Tensor): (N_s, Q, H, W) the generator's auxiliary masks.
            aux_boxes (Tensor): (N_s, Q, 4) the generator's learned normalised xyxy boxes.

        Returns:
            tuple: sparse (N, K, C) and dense (N, C, g, g) prompt embeddings (N = N_s * Q), and
            the (N_s, Q, 4) normalised prompt box (learned part differentiable; None for
            ``'mask'``, which has no learned box).
        """
        pe = self.prompt_encoder
        n_s, q, h, w = aux_mask_logits.shape
        with torch.no_grad():
            binary = aux_mask_logits.detach().sigmoid() > self.mask_threshold
            mask_boxes = masks_to_boxes_normalized(binary.flatten(0, 1)).view(n_s, q, 4)
        if self.prompt_mode == 'mask':
            box = None
            prompt_box = mask_boxes
        elif self.prompt_mode == 'mask_avg_box':
            box = (aux_boxes + mask_boxes) / 2
            prompt_box = box.detach()
        else:
            box = aux_boxes
            prompt_box = box.detach()
        enc_wh = self.encoder_input_size()
        grid_wh = (w, h) if self.box_pixel_grid == 'patch' else enc_wh
        size = prompt_box.new_tensor(grid_wh * 2)
        pixel_boxes = torch.floor(prompt_box * size)
        if grid_wh != enc_wh:
            pixel_boxes = pixel_boxes * prompt_box.new_tensor(
                (enc_wh[0] / grid_wh[0], enc_wh[1] / grid_wh[1]) * 2)
        pixel_boxes = pixel_boxes.flatten(0, 1)
        masks = None
        if self.prompt_mode != 'box':
            masks = F.interpolate(binary.flatten(0, 1)[:, None].float(),
                                  size=pe.mask_input_size, mode='nearest')
        sparse, dense = pe(points=None, boxes=pixel_boxes, masks=masks)
        return sparse, dense, box

    def encoder_input_size(self):
        """(W, H) of the encoder input (MaskSAMPromptEncoder's input_image_size is its
        canvas, so its ``img_size`` is read)."""
        pe = self.prompt_encoder
        side = getattr(pe, 'img_size', None)
        return (side, side) if side is not None else tuple(pe.input_image_size[::-1])

    def image_pe(self, num_slices):
        """SAM's dense PE plus the depth PE of each slice, repeated per query: (N, C, g, g), or
        SAM's (1, C, g, g) without depth PE."""
        pe = self.prompt_encoder.get_dense_pe()
        if self.depth_pe is None:
            return pe
        depth_pe = self.depth_pe.repeat(num_slices // self.num_frames, 1, 1, 1)
        return (pe + depth_pe).repeat_interleave(self.num_queries, dim=0)

    def forward(self, inputs, batch_data_samples=None):
        """Decode one mask and one class distribution per query.

        Args:
            inputs (dict): the generator's output: ``image_embedding`` (N_s, C, g, g),
                ``aux_mask_logits`` (N_s, Q, H, W), ``aux_boxes`` (N_s, Q, 4),
                ``aux_cls_tokens`` (N_s, Q, C).
            batch_data_samples: unused (the prompts are generated).

        Returns:
            dict: ``cls_logits`` (N_s, Q, num_classes + 1), ``mask_logits`` (N_s, Q, H, W),
            ``aux_mask_logits`` (N_s, Q, H, W), ``aux_boxes`` (N_s, Q, 4) the supervised box.
        """
        embedding = inputs['image_embedding']
        aux_masks = inputs['aux_mask_logits']
        n_s, q = aux_masks.shape[:2]
        if q != self.num_queries or n_s % self.num_frames:
            raise ValueError(f'MaskSAMHead got {q} queries for {n_s} slices; expected '
                             f'num_queries={self.num_queries} and a multiple of '
                             f'num_frames={self.num_frames} slices')
        sparse, dense, box = self.build_prompts(aux_masks, inputs['aux_boxes'])
        cls_tokens = (inputs['aux_cls_tokens'] + self.cls_token.weight).flatten(0, 1)
        sparse = torch.cat([sparse, cls_tokens[:, None]], dim=1)
        hs, src = self.mask_decoder.decode_tokens(
            embedding.repeat_interleave(q, dim=0), self.image_pe(n_s), sparse, dense,
            adapters=self.decoder_adapter,
            layout=dict(num_queries=q, hw=tuple(embedding.shape[-2:])))
        masks, _ = self.mask_decoder.masks_from_tokens(hs, self.mask_decoder.upscale(src)[-1])
        masks = masks[:, 0].view(n_s, q, *masks.shape[-2:])
        size = aux_masks.shape[-2:]
        if self.refine is not None:
            masks = self.refine(masks)
        if self.mask_postprocess == 'sam':
            # SAM's postprocess_masks (official ACDC): up to the encoder input, then down
            enc = self.encoder_input_size()
            masks = F.interpolate(masks, size=enc[::-1], mode='bilinear', align_corners=False)
        if masks.shape[-2:] != size:
            masks = F.interpolate(masks, size=size, mode='bilinear', align_corners=False)
        cls_logits = self.cls_embed(hs[:, -1]).view(n_s, q, -1)
        return dict(cls_logits=cls_logits, mask_logits=masks, aux_mask_logits=aux_masks,
                    aux_boxes=inputs['aux_boxes'] if box is None else box)

    def predict_by_feat(self, seg_logits, batch_img_metas):
        """Semantic class probabilities at the input size: (N_s, num_classes, H, W)."""
        scores = semantic_scores(seg_logits['cls_logits'], seg_logits['mask_logits'])
        return super().predict_by_feat(scores, batch_img_metas)

    def loss_by_feat(self, seg_logits, batch_data_samples):
        """Set-criterion losses against one target per class present in each slice.

        Args:
            seg_logits (dict): :meth:`forward`'s output.
            batch_data_samples (list[SegDataSample]): N_s per-slice samples with
                ``gt_sem_seg`` (1, H, W).

        Returns:
            dict[str, Tensor]: the criterion's weighted terms.
        """
        labels = self._stack_batch_gt(batch_data_samples).squeeze(1).long()
        size = seg_logits['mask_logits'].shape[-2:]
        if labels.shape[-2:] != size:
            labels = F.interpolate(labels[:, None].float(), size=size,
                                   mode='nearest').squeeze(1).long()
        targets = slice_targets(labels, self.num_classes)
        return self.loss_decode(seg_logits['cls_logits'], seg_logits['mask_logits'],
                                seg_logits['aux_mask_logits'], seg_logits['aux_boxes'],
                                targets)

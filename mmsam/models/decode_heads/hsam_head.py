"""H-SAM's hierarchical two-stage decoder (Cheng et al., CVPR 2024)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.losses import accuracy
from segment_anything.modeling.common import LayerNorm2d

from mmsam.registry import MODELS
from ..utils.class_balanced_mask_attention import ClassBalancedMaskAttention, resize_labels
from ..utils.class_token_mask_attention import ClassTokenMaskAttention
from ..utils.hsam_class_map_attention import HSAMClassMapAttention
from ..utils.masked_two_way_transformer import pad_token_mask
from ..utils.ndimage_zoom import zoom_nearest
from .sam_decode_head import SAMDecodeHead
from .samed_head import LOSS_LABEL_RESIZES, reset_class_token_parameters

MASK_ATTENTION_MODES = ('learnable', 'binary', None)
CMATTN_MODES = ('official', 'class_tokens', 'spatial')
PRIOR_RESIZES = ('bilinear', 'area')
STAGE_FUSIONS = ('probs', 'logits')
CMATTN_WEIGHTINGS = ('softmax', 'tanh')


@MODELS.register_module()
class HSAMHead(SAMDecodeHead):
    """Two SAM mask decoders in sequence, the second guided by the first's prior mask.

    The paper-table configs build the OFFICIAL network (``configs/_base_/models/hsam_vit-b.py``):
    ``mask_decoder=dict(type='HSAMMaskDecoder', block_order='cross_first')``,
    ``stage2_decoder=dict(type='HSAMStage2Decoder')``, ``cmattn_mode='official'`` with
    ``cmattn_weighting='softmax'``, ``prior_resize='bilinear'``, ``stage_fusion='logits'``.
    With ``stage2_decoder=None`` (the default) the head is mmsam's reading of the paper,
    described next (``configs/hsam/hsam_vit-b_synapse_10pct_mmsam-reading.py``, the demo).

    Stage 1 is SAMed's prompt-free decoder: class logits at 1/4 of the input, whose softmax
    is the prior. Stage 2 is a second SAM decoder (same architecture, randomly initialised as
    in the official code) whose input embedding gets, in
    training, Gaussian noise of std ``embedding_noise * (max - min)`` of the batch's
    embedding (official code) and is then enhanced by class-balanced mask-guided
    self-attention (CMAttn: :class:`ClassTokenMaskAttention` over the C class maps, or the
    spatial :class:`ClassBalancedMaskAttention`), whose token-to-image attention is
    multiplied by the prior (learnable mask cross-attention, ``X = M * softmax(K Q^T) V + X``),
    and whose pixel decoder continues stage 1's with skip connections up to full resolution.
    The prediction averages both stages' probabilities (paper) or logits (official). The
    loss is
    ``w * L(stage 1, labels at 1/4) + (1 - w) * L(stage 2, labels at full size)`` with
    ``w = stage1_weight``, which :class:`StageLossWeightHook` schedules.

    Every switch of the paper's ablation (Table 4 and 5) is an argument.

    Args:
        num_classes (int): classes including background.
        prompt_encoder (dict), mask_decoder (dict), loss_decode: see :class:`SAMDecodeHead`;
            ``mask_decoder`` builds stage 1 (and stage 2 when ``stage2_decoder`` is None); an
            :class:`HSAMMaskDecoder` has the official block order as ``block_order``.
        mask_guided_self_attention (bool): CMAttn on the stage-2 input embedding.
        class_balance (bool): CMAttn's class-balanced noise (training only).
        mask_cross_attention (str | None): ``'learnable'`` (H-SAM), ``'binary'`` (Mask2Former's
            original mask attention, Table 5) or None (plain cross-attention).
        hierarchical_pixel_decoder (bool): stage 2 upsamples to full resolution with skip
            connections from stage 1's pixel decoder; otherwise SAM's pixel decoder (1/4).
        stage1_weight (float): initial w (the hook overrides it during training).
        class_frequencies (list[float], optional): per-class pixel frequencies for the noise,
            computed offline (``tools/analysis_tools/class_frequencies.py``); when None they
            are counted from the training labels seen so far.
        max_noise_var (float): noise variance of the rarest class.
        attention_heads (int): heads of CMAttn.
        cmattn_mode (str): ``'official'`` (:class:`HSAMClassMapAttention`, the official
            block), ``'class_tokens'`` (default: mmsam's reading, attention among the C class
            maps, width h * w, with residuals) or ``'spatial'`` (attention among the h * w
            positions, width D).
        cmattn_weighting (str): ``'softmax'`` (official mode only: the official quirk, a
            softmax over one channel, so the block is a constant ``2 S``) or ``'tanh'`` (a
            bounded learnt weight, see :class:`ClassTokenMaskAttention`).
        embedding_noise (float): training-time noise on stage 2's input embedding, std
            ``embedding_noise * (max - min)`` (official: 0.2); 0 turns it off.
        stage_fusion (str): ``'probs'`` (paper: mean of the stages' probabilities) or
            ``'logits'`` (official test code: mean of the logits).
        reinit_class_tokens (bool): after loading SAM, re-initialise stage 1's mask tokens,
            hypernetworks and IoU head (official).
        stage2_decoder (dict, optional): the official stage 2, an :class:`HSAMStage2Decoder`
            config (its ``num_mask_tokens`` and ``skip_connection`` are set here from
            ``num_classes`` and ``hierarchical_pixel_decoder``). The stage-2 input is then the
            embedding plus the dense prompt, re-weighted by CMAttn, as the official code; the
            tokens are the class tokens only; the prior masks both cross-attentions of every
            block. None: a second ``mask_decoder`` (mmsam's reading).
        prior_resize (str): the prior mask at the embedding grid: ``'bilinear'`` (official:
            softmax of the bilinearly downsampled stage-1 logits) or ``'area'`` (area average
            of the stage-1 probabilities).
        cmattn_mlp_dim (int): MLP width of ``cmattn_mode='official'`` (official: 2048 in
            both builds).
        loss_label_resize (str): how the labels reach stage 1's (and the official CMAttn
            noise's) 1/4 resolution: ``'interpolate'`` (``F.interpolate`` nearest) or
            ``'zoom'`` (``scipy.ndimage.zoom(order=0)``, as the official dataset makes
            ``low_res_label``; see :class:`SAMedHead`).
    """

    def __init__(self, num_classes, prompt_encoder, mask_decoder, loss_decode,
                 mask_guided_self_attention=True, class_balance=True,
                 mask_cross_attention='learnable', hierarchical_pixel_decoder=True,
                 stage1_weight=0.4, class_frequencies=None, max_noise_var=0.1,
                 attention_heads=8, cmattn_mode='class_tokens', cmattn_weighting='tanh',
                 embedding_noise=0.2, stage_fusion='probs', reinit_class_tokens=True,
                 stage2_decoder=None, prior_resize='area',
                 cmattn_mlp_dim=2048, loss_label_resize='interpolate', **kwargs):
        if 'num_multimask_outputs' in mask_decoder:
            raise ValueError('HSAMHead sets mask_decoder.num_multimask_outputs from '
                             'num_classes; remove it from the config')
        if mask_cross_attention not in MASK_ATTENTION_MODES:
            raise ValueError(f'mask_cross_attention must be one of {MASK_ATTENTION_MODES}, '
                             f'got {mask_cross_attention!r}')
        if class_balance and not mask_guided_self_attention:
            raise ValueError('class_balance perturbs the input of the mask-guided '
                             'self-attention; it needs mask_guided_self_attention=True')
        for name, value, choices in (('cmattn_mode', cmattn_mode, CMATTN_MODES),
                                     ('stage_fusion', stage_fusion, STAGE_FUSIONS),
                                     ('cmattn_weighting', cmattn_weighting, CMATTN_WEIGHTINGS),
                                     ('prior_resize', prior_resize, PRIOR_RESIZES),
                                     ('loss_label_resize', loss_label_resize,
                                      LOSS_LABEL_RESIZES)):
            if value not in choices:
                raise ValueError(f'HSAMHead {name} must be one of {choices}, got {value!r}')
        if embedding_noise < 0:
            raise ValueError(f'HSAMHead embedding_noise must be >= 0, got {embedding_noise}')
        mask_decoder = dict(mask_decoder, num_multimask_outputs=num_classes - 1)
        super().__init__(num_classes, prompt_encoder, mask_decoder, loss_decode, **kwargs)
        self.official_stage2 = stage2_decoder is not None
        if self.official_stage2:
            for key in ('num_mask_tokens', 'skip_connection'):
                if key in stage2_decoder:
                    raise ValueError(f'HSAMHead sets stage2_decoder.{key}; remove it from the '
                                     'config')
            stage2_cfg = dict(stage2_decoder, num_mask_tokens=num_classes,
                              skip_connection=hierarchical_pixel_decoder)
        else:
            stage2_cfg = dict(mask_decoder, checkpoint=None)
            if hasattr(self.mask_decoder, 'prepare_features'):
                # SAM 2: stage 2 reads the embedding and pixel features stage 1 prepared
                stage2_cfg.update(use_high_res_features=False, no_mem_embed=False)
        self.stage2_decoder = MODELS.build(stage2_cfg)
        self.prior_resize = prior_resize
        self.loss_label_resize = loss_label_resize
        self.mask_cross_attention = mask_cross_attention
        self.stage1_weight = stage1_weight
        self.embedding_noise = embedding_noise
        self.stage_fusion = stage_fusion
        self.reinit_class_tokens = reinit_class_tokens
        width = self.stage2_decoder.transformer_dim
        grid_h, grid_w = self.prompt_encoder.image_embedding_size
        if not mask_guided_self_attention:
            self.cmattn = None
        elif cmattn_mode == 'official':
            self.cmattn = HSAMClassMapAttention(
                num_classes, grid_h * grid_w, attention_heads, mlp_dim=cmattn_mlp_dim,
                weighting=cmattn_weighting, class_balance=class_balance)
        elif cmattn_weighting == 'softmax':
            raise ValueError("cmattn_weighting='softmax' is the official CMAttn's; use it with "
                             "cmattn_mode='official'")
        elif cmattn_mode == 'class_tokens':
            self.cmattn = ClassTokenMaskAttention(
                num_classes, grid_h * grid_w, attention_heads, class_balance=class_balance,
                max_noise_var=max_noise_var)
        else:
            self.cmattn = ClassBalancedMaskAttention(
                num_classes, width, attention_heads, class_balance, max_noise_var)
        self.hierarchical_pixel_decoder = hierarchical_pixel_decoder
        if hierarchical_pixel_decoder and not self.official_stage2:
            # SAM's pixel decoder reaches 4x the embedding grid; ViT-B's 16-pixel patches need
            # two more 2x steps to reach the input size (a tiny ViT with 8-pixel patches, one).
            patch = self.prompt_encoder.input_image_size[0] // \
                self.prompt_encoder.image_embedding_size[0]
            steps = max(int(round(math.log2(patch / 4))), 0)
            out = width // 8
            layers = []
            for i in range(steps):
                layers += [nn.ConvTranspose2d(out, out, kernel_size=2, stride=2)]
                layers += [LayerNorm2d(out), nn.GELU()] if i < steps - 1 else [nn.GELU()]
            self.full_res_upscaling = nn.Sequential(*layers)
        fixed = class_frequencies is not None
        if cmattn_mode == 'official':
            # the official noise ranks the batch's labels; no frequencies are kept
            if fixed:
                raise ValueError("class_frequencies is for mmsam's CMAttn; the official one "
                                 "(cmattn_mode='official') ranks the labels of each batch")
            self.count_classes = False
            return
        if fixed and len(class_frequencies) != num_classes:
            raise ValueError(f'class_frequencies has {len(class_frequencies)} entries, '
                             f'num_classes is {num_classes}')
        self.count_classes = not fixed
        counts = torch.tensor(class_frequencies, dtype=torch.float64) if fixed else \
            torch.zeros(num_classes, dtype=torch.float64)
        self.register_buffer('class_counts', counts)

    def init_weights(self):
        """Load the SAM parts' checkpoints, then re-initialise stage 1's class-token parts."""
        super().init_weights()
        if self.reinit_class_tokens and self.mask_decoder.checkpoint is not None:
            reset_class_token_parameters(self.mask_decoder)

    def perturb_embedding(self, embedding):
        """Official training-time noise on stage 2's input: (B, D, h, w) -> same shape.

        Returns ``embedding + N(0, 1) * embedding_noise * (max - min)``, the range taken over
        the whole batch tensor; in eval mode or with ``embedding_noise=0`` the input itself.
        """
        if not self.training or self.embedding_noise == 0:
            return embedding
        spread = (embedding.max() - embedding.min()).detach()
        return embedding + torch.randn_like(embedding) * self.embedding_noise * spread

    def _stage2_pixels(self, src, half1, quarter1):
        """Stage 2's pixel decoder: (B, D, h, w) -> (B, D/8, H, W) (hierarchical) or 1/4."""
        up = self.stage2_decoder.output_upscaling
        if not self.hierarchical_pixel_decoder:
            return up(src)
        half = up[2](up[1](up[0](src) + half1))
        quarter = up[4](up[3](half) + quarter1)
        return self.full_res_upscaling(quarter)

    def forward(self, inputs, batch_data_samples=None, labels=None):
        """Run both stages.

        Args:
            inputs (tuple[Tensor]): encoder features; ``inputs[-1]`` is the (B, D, h, w)
                image embedding.
            batch_data_samples: unused (prompt-free).
            labels (Tensor, optional): (B, H, W) ground truth for CMAttn's noise (training).

        Returns:
            tuple[Tensor, Tensor]: stage-1 logits (B, C, 4h, 4w) and stage-2 logits at the
            input size (B, C, H, W) (official: 16h x 16w), or (B, C, 4h, 4w) without the
            hierarchical pixel decoder.
        """
        embedding, high_res = self.image_features(inputs)
        b, _, h, w = embedding.shape
        pe = self.prompt_encoder.get_dense_pe()
        sparse, dense = self.prompt_free_embeddings(embedding)

        hs1, src1 = self.mask_decoder.decode_tokens(embedding, pe, sparse, dense)
        half1, quarter1 = self.upscale(src1, high_res)
        logits1, _ = self.mask_decoder.masks_from_tokens(hs1, quarter1)

        stage2_input = self.perturb_embedding(embedding)
        if self.official_stage2:
            # official: CMAttn re-weights the embedding plus the dense prompt
            stage2_input = stage2_input + dense
        if self.cmattn is not None:
            stage2_input = self._apply_cmattn(stage2_input, hs1, src1, pe, labels,
                                              logits1.shape[-2:])
        prior = self.prior_mask(logits1, (h, w)).flatten(2) \
            if self.mask_cross_attention is not None else None
        if self.official_stage2:
            token_mask = None if prior is None else pad_token_mask(
                prior, self.num_classes + sparse.shape[1], first_class_token=0)
            hs2, src2 = self.stage2_decoder.decode_tokens(stage2_input, pe, sparse, token_mask,
                                                          self.mask_cross_attention)
            logits2, _ = self.stage2_decoder.masks_from_tokens(
                hs2, src2, quarter1 if self.hierarchical_pixel_decoder else None)
            return logits1, logits2
        token_mask = None if prior is None else pad_token_mask(prior, 1 + self.num_classes)
        hs2, src2 = self.stage2_decoder.decode_tokens(stage2_input, pe, sparse, dense,
                                                      token_mask, self.mask_cross_attention)
        logits2, _ = self.stage2_decoder.masks_from_tokens(
            hs2, self._stage2_pixels(src2, half1, quarter1))
        return logits1, logits2

    def prior_mask(self, logits1, size):
        """Stage 1's class probabilities at the embedding grid: (B, C, 4h, 4w) -> (B, C, h, w).

        ``'bilinear'``: softmax of the bilinearly resized logits (official); ``'area'``: area
        average of the probabilities.
        """
        if self.prior_resize == 'bilinear':
            return F.interpolate(logits1, size=size, mode='bilinear',
                                 align_corners=False).softmax(dim=1)
        return F.interpolate(logits1.softmax(dim=1), size=size, mode='area')

    def _apply_cmattn(self, stage2_input, hs1, src1, pe, labels, stage1_size):
        """CMAttn on the stage-2 input, from stage 1's mask feature (class tokens x features)."""
        b, _, h, w = stage2_input.shape
        mask_feature = hs1[:, 1:1 + self.num_classes] @ src1.flatten(2)  # (B, C, h * w)
        if isinstance(self.cmattn, HSAMClassMapAttention):
            # the official noise reads the stage-1 (1/4-resolution) labels
            small = None if labels is None else self.labels_at(labels, stage1_size)
            return self.cmattn(stage2_input, mask_feature, small)
        small_labels = None if labels is None else resize_labels(labels, (h, w))
        frequencies = self.class_counts / self.class_counts.sum().clamp_min(1)
        return self.cmattn(stage2_input, mask_feature.reshape(b, -1, h, w), pe, small_labels,
                           frequencies)

    def fuse_stages(self, logits1, logits2):
        """Ensemble the stages at stage 2's size: (B, C, h1, w1), (B, C, H, W) -> (B, C, H, W).

        ``'probs'``: log of the mean probability (paper); ``'logits'``: mean logits (official
        test code). Stage 1 is upsampled bilinearly first.
        """
        logits1 = F.interpolate(logits1, size=logits2.shape[-2:], mode='bilinear',
                                align_corners=self.align_corners)
        if self.stage_fusion == 'logits':
            return (logits1 + logits2) / 2
        probs = (logits1.softmax(dim=1) + logits2.softmax(dim=1)) / 2
        return probs.clamp_min(1e-8).log()

    def predict(self, inputs, batch_data_samples, test_cfg):
        """The stages' ensemble (:meth:`fuse_stages`) at the input size: (B, C, H, W)."""
        logits1, logits2 = self.forward(inputs, batch_data_samples)
        return self.predict_by_feat(self.fuse_stages(logits1, logits2),
                                    [s.metainfo for s in batch_data_samples])

    def labels_at(self, labels, size):
        """(B, H, W) labels at ``size`` by ``loss_label_resize``: (B, h, w) long."""
        if self.loss_label_resize == 'zoom':
            return zoom_nearest(labels, size).long()
        return resize_labels(labels, size)

    def stage_losses(self, logits1, logits2, labels):
        """Each stage's unweighted losses, on the labels at its resolution.

        Args:
            logits1 (Tensor): (B, C, h1, w1); logits2 (Tensor): (B, C, h2, w2).
            labels (Tensor): (B, H, W) class ids.

        Returns:
            list[tuple[dict, Tensor]]: per stage, ``{loss_name: value}`` and its labels.
        """
        out = []
        for logits in (logits1, logits2):
            stage_labels = self.labels_at(labels, logits.shape[-2:])
            out.append((self.sum_losses(logits, stage_labels, ignore_index=self.ignore_index),
                        stage_labels))
        return out

    def loss(self, inputs, batch_data_samples, train_cfg):
        """``w * L1 + (1 - w) * L2`` per loss term; also logs ``stage1_weight`` and each
        stage's accuracy."""
        labels = self._stack_batch_gt(batch_data_samples)[:, 0]
        if self.count_classes:
            valid = labels[labels != self.ignore_index]
            self.class_counts += torch.bincount(valid.flatten(), minlength=self.num_classes)[
                :self.num_classes].to(self.class_counts)
        logits1, logits2 = self.forward(inputs, batch_data_samples, labels=labels)
        w = float(self.stage1_weight)
        losses = {}
        stages = self.stage_losses(logits1, logits2, labels)
        for (stage, logits, weight), (stage_losses, stage_labels) in zip(
                (('s1', logits1, w), ('s2', logits2, 1 - w)), stages):
            for name, value in stage_losses.items():
                losses[name] = losses.get(name, 0) + weight * value
            losses[f'acc_seg_{stage}'] = accuracy(logits, stage_labels,
                                                  ignore_index=self.ignore_index)
        losses['stage1_weight'] = logits1.new_tensor(w)
        return losses

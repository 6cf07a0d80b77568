"""SAM 2's tracking part (memory attention, memory encoder, SAM heads) without the image encoder.

:class:`SAM2MemoryTracker` is ``sam2.modeling.sam2_base.SAM2Base`` built without its image
encoder: the image features come from mmsam's ``SAM2ImageEncoder`` (or any module with the same
output), and everything SAM 2 does per frame -- conditioning the frame's features on the memory
bank (``_prepare_memory_conditioned_features``: memory attention over up to ``num_maskmem``
spatial memories and the object pointers), the prompt encoder and mask decoder with occlusion
score and object pointer (``_forward_sam_heads``), encoding the prediction into a new memory
(``_encode_new_memory``) -- is SAM2Base's own code, called unchanged. That is the exact route:
the memory-bank selection rules (temporal positions, reverse tracking, pointers only from the
past at evaluation) are the package's, not a re-implementation.

Its modules and parameters carry the official key names (``memory_attention.*``,
``memory_encoder.*``, ``sam_prompt_encoder.*``, ``sam_mask_decoder.*``, ``maskmem_tpos_enc``,
``no_mem_embed``, ``no_mem_pos_enc``, ``no_obj_ptr``, ``obj_ptr_proj.*``,
``obj_ptr_tpos_proj.*``, ``mask_downsample.*``, ``no_obj_embed_spatial``), so an official SAM 2.1
or MedSAM2 file loads into it strictly (all keys but ``image_encoder.*``).
"""
import types
from typing import Dict, Optional

import torch.nn as nn
from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam.transformer import RoPEAttention
from sam2.modeling.sam2_base import SAM2Base

from mmsam.registry import MODELS
from .sam2_checkpoint import load_sam2_state, read_sam2_state_dict

#: SAM 2.1's tracking options, the ``model`` keys of every ``sam2.1_hiera_*.yaml`` (tiny to
#: large) and of MedSAM2's ``sam2.1_hiera_t512`` / finetune configs.
SAM21_TRACKING = dict(
    num_maskmem=7, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
    use_mask_input_as_output_without_sam=True, directly_add_no_mem_embed=True,
    no_obj_embed_spatial=True, use_high_res_features_in_sam=True, multimask_output_in_sam=True,
    iou_prediction_use_sigmoid=True, use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=True,
    proj_tpos_enc_in_obj_ptrs=True, use_signed_tpos_enc_to_obj_ptrs=True,
    only_obj_ptrs_in_the_past_for_eval=True, pred_obj_scores=True, pred_obj_scores_mlp=True,
    fixed_no_obj_ptr=True, multimask_output_for_tracking=True,
    use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
    use_mlp_for_obj_ptr_proj=True)

#: what ``sam2.build_sam.build_sam2_video_predictor`` (and MedSAM2's
#: ``build_sam2_video_predictor_npz``) add for inference; both act only in eval mode
#: (binarized key-slice mask in memory; single mask replaced by the best of three when unstable).
#: Their third override, ``fill_hole_area=8``, needs sam2's optional CUDA extension (on CPU the
#: package skips it with a warning) and is not applied here.
VIDEO_PREDICTOR_OPTIONS = dict(
    binarize_mask_from_pts_for_mem_enc=True,
    sam_mask_decoder_extra_args=dict(dynamic_multimask_via_stability=True,
                                     dynamic_multimask_stability_delta=0.05,
                                     dynamic_multimask_stability_thresh=0.98))


def build_memory_attention(d_model: int = 256, mem_dim: int = 64, num_layers: int = 4,
                           dim_feedforward: int = 2048, num_heads: int = 1,
                           dropout: float = 0.1, feat_size: int = 64) -> MemoryAttention:
    """SAM 2.1's memory attention (sam2's modules, the yaml's hyper-parameters by default).

    Args:
        d_model (int): image feature width (the neck's ``d_model``).
        mem_dim (int): memory width (the memory encoder's ``out_dim``).
        num_layers, dim_feedforward, num_heads, dropout: of the attention layers.
        feat_size (int): side of the stride-16 feature map (RoPE table; image_size // 16).
    """

    def rope(**extra):
        return RoPEAttention(rope_theta=10000.0, feat_sizes=(feat_size, feat_size),
                             embedding_dim=d_model, num_heads=num_heads, downsample_rate=1,
                             dropout=dropout, **extra)

    layer = MemoryAttentionLayer(
        activation='relu', d_model=d_model, dim_feedforward=dim_feedforward, dropout=dropout,
        pos_enc_at_attn=False, pos_enc_at_cross_attn_keys=True,
        pos_enc_at_cross_attn_queries=False, self_attention=rope(),
        cross_attention=rope(rope_k_repeat=True, kv_in_dim=mem_dim))
    return MemoryAttention(d_model=d_model, pos_enc_at_input=True, layer=layer,
                           num_layers=num_layers)


def build_memory_encoder(d_model: int = 256, mem_dim: int = 64,
                         num_fuser_layers: int = 2) -> MemoryEncoder:
    """SAM 2.1's memory encoder (sam2's modules, the yaml's hyper-parameters by default)."""
    return MemoryEncoder(
        out_dim=mem_dim, in_dim=d_model,
        mask_downsampler=MaskDownSampler(embed_dim=d_model, kernel_size=3, stride=2, padding=1),
        fuser=Fuser(CXBlock(dim=d_model, kernel_size=7, padding=3, layer_scale_init_value=1e-6,
                            use_dwconv=True), num_layers=num_fuser_layers),
        position_encoding=PositionEmbeddingSine(num_pos_feats=mem_dim, normalize=True,
                                                scale=None, temperature=10000))


class _FeatureWidth(nn.Module):
    """Stands in for the image encoder while SAM2Base reads ``image_encoder.neck.d_model``."""

    def __init__(self, d_model: int):
        super().__init__()
        self.neck = types.SimpleNamespace(d_model=d_model)


@MODELS.register_module()
class SAM2MemoryTracker(SAM2Base):
    """SAM 2 without its image encoder: memory attention, memory encoder, prompt encoder, mask
    decoder and the memory / pointer embeddings, with SAM2Base's per-frame methods.

    Args:
        d_model (int): image feature width, 256 in every official model.
        mem_dim (int): memory width, 64 in every official model.
        image_size (int): the square network input (1024 SAM 2.1; MedSAM2 512).
        memory_attention (dict, optional): :func:`build_memory_attention` overrides
            (``num_layers``, ``dim_feedforward``, ``num_heads``, ``dropout``).
        memory_encoder (dict, optional): :func:`build_memory_encoder` overrides.
        checkpoint (str, optional): official SAM 2 / MedSAM2 file; every key but
            ``image_encoder.*`` is loaded strictly, weights only, by :meth:`init_weights` (as
            ``SAM2ImageEncoder`` loads its part).
        **options: SAM2Base arguments over :data:`SAM21_TRACKING` and
            :data:`VIDEO_PREDICTOR_OPTIONS`.
    """

    def __init__(self, d_model: int = 256, mem_dim: int = 64, image_size: int = 1024,
                 memory_attention: Optional[Dict] = None,
                 memory_encoder: Optional[Dict] = None, checkpoint: Optional[str] = None,
                 **options):
        backbone_stride = 16
        if image_size % backbone_stride:
            raise ValueError(f'SAM2MemoryTracker: image_size={image_size} is not a multiple of '
                             f'the encoder stride {backbone_stride}')
        kwargs = {**SAM21_TRACKING, **VIDEO_PREDICTOR_OPTIONS, **options}
        super().__init__(
            image_encoder=_FeatureWidth(d_model),
            memory_attention=build_memory_attention(
                d_model, mem_dim, feat_size=image_size // backbone_stride,
                **(memory_attention or {})),
            memory_encoder=build_memory_encoder(d_model, mem_dim, **(memory_encoder or {})),
            image_size=image_size, backbone_stride=backbone_stride, **kwargs)
        del self.image_encoder  # features come from mmsam's encoder
        self.checkpoint = checkpoint

    def init_weights(self) -> None:
        """Load ``checkpoint`` (when given): all its keys but ``image_encoder.*``, strictly."""
        if self.checkpoint is None:
            return
        state = {k: v for k, v in read_sam2_state_dict(self.checkpoint).items()
                 if not k.startswith('image_encoder.')}
        load_sam2_state(self, state, self.checkpoint, 'SAM 2 tracker (memory + SAM heads)',
                        hint='Check d_model / mem_dim / image_size / memory_attention against '
                             'the file (official SAM 2.1 and MedSAM2: 256 / 64 / 4 layers).')

"""SAM 2's mask decoder as a registered component, with the interface of mmsam's SAM decoder."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayTransformer

from mmsam.registry import MODELS
from .masked_two_way_transformer import two_way_transformer_forward
from .sam2_checkpoint import load_sam2_state, read_sam2_part, read_sam2_state_dict
from .sam_mask_decoder import SAMMaskDecoder

NO_MEM_EMBED_KEY = 'no_mem_embed'  # SAM2Base's top-level key in official files


@MODELS.register_module()
class SAM2MaskDecoder(MaskDecoder):
    """``sam2``'s ``MaskDecoder`` (SAM 2 / 2.1), usable wherever mmsam's SAM decoder is.

    The official ``forward`` (``multimask_output``, ``repeat_image``, ``high_res_features``)
    is unchanged. The methods the heads call have :class:`SAMMaskDecoder`'s meaning and
    token layout (IoU token, mask tokens, prompt tokens): SAM 2's object-score token
    (``pred_obj_scores``) runs first in the transformer as in ``sam2`` but is left out of
    the returned tokens (``return_object_token=True`` gives it).

    The image side is prepared by :meth:`prepare_features` from ``SAM2ImageEncoder``'s FPN
    levels, as ``SAM2ImagePredictor.set_image`` does: ``no_mem_embed`` added to the
    stride-16 embedding (``directly_add_no_mem_embed``), and with
    ``use_high_res_features`` the stride-4 / stride-8 levels projected by ``conv_s0`` /
    ``conv_s1`` for the pixel decoder.

    Official weights (``sam_mask_decoder.*`` and the top-level ``no_mem_embed`` of a
    ``{'model': state_dict}`` SAM 2 file) load strictly, weights-only. As for SAM 1, a decoder
    with more mask tokens than SAM's 4 copies the 4 and keeps its extra rows / hypernetworks
    at their initial values; one with fewer drops the surplus.

    Args:
        transformer_dim (int): token width (SAM 2: 256, the neck's ``d_model``).
        num_multimask_outputs (int): SAM 2: 3; ``num_multimask_outputs + 1`` mask tokens.
        transformer_depth (int), transformer_mlp_dim (int), transformer_num_heads (int): the
            two-way transformer (SAM 2: 2, 2048, 8).
        iou_head_depth (int), iou_head_hidden_dim (int): SAM 2: 3, 256.
        use_high_res_features (bool): SAM 2.1: True (``use_high_res_features_in_sam``).
        iou_prediction_use_sigmoid (bool): SAM 2.1: True.
        pred_obj_scores (bool), pred_obj_scores_mlp (bool): SAM 2.1: True, True.
        use_multimask_token_for_obj_ptr (bool): SAM 2.1: True (only the official
            ``forward`` reads it).
        dynamic_multimask_via_stability (bool): at eval, :meth:`single_mask` falls back to
            the best multimask output when token 0's mask is unstable (``build_sam2``'s
            post-processing default: True); False (mmsam's default) always gives token 0.
        dynamic_multimask_stability_delta (float), dynamic_multimask_stability_thresh (float):
            0.05, 0.98.
        no_mem_embed (bool): own and add ``no_mem_embed`` (SAM 2.1's
            ``directly_add_no_mem_embed``: True).
        frozen (bool): freeze all weights.
        checkpoint (str, optional): official SAM 2 / MedSAM2 file, loaded by
            :meth:`init_weights`.
    """

    def __init__(self, transformer_dim: int = 256, num_multimask_outputs: int = 3,
                 transformer_depth: int = 2, transformer_mlp_dim: int = 2048,
                 transformer_num_heads: int = 8, iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256, use_high_res_features: bool = True,
                 iou_prediction_use_sigmoid: bool = True, pred_obj_scores: bool = True,
                 pred_obj_scores_mlp: bool = True, use_multimask_token_for_obj_ptr: bool = True,
                 dynamic_multimask_via_stability: bool = False,
                 dynamic_multimask_stability_delta: float = 0.05,
                 dynamic_multimask_stability_thresh: float = 0.98, no_mem_embed: bool = True,
                 frozen: bool = False, checkpoint: Optional[str] = None):
        super().__init__(
            transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(depth=transformer_depth, embedding_dim=transformer_dim,
                                          mlp_dim=transformer_mlp_dim,
                                          num_heads=transformer_num_heads),
            num_multimask_outputs=num_multimask_outputs, activation=nn.GELU,
            iou_head_depth=iou_head_depth, iou_head_hidden_dim=iou_head_hidden_dim,
            use_high_res_features=use_high_res_features,
            iou_prediction_use_sigmoid=iou_prediction_use_sigmoid,
            dynamic_multimask_via_stability=dynamic_multimask_via_stability,
            dynamic_multimask_stability_delta=dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=dynamic_multimask_stability_thresh,
            pred_obj_scores=pred_obj_scores, pred_obj_scores_mlp=pred_obj_scores_mlp,
            use_multimask_token_for_obj_ptr=use_multimask_token_for_obj_ptr)
        # SAM2Base initialises it with trunc_normal_(std=0.02)
        self.no_mem_embed = (nn.Parameter(nn.init.trunc_normal_(
            torch.zeros(1, 1, transformer_dim), std=0.02)) if no_mem_embed else None)
        self.checkpoint = checkpoint
        if frozen:
            self.requires_grad_(False)

    def init_weights(self) -> None:
        """Load ``sam_mask_decoder.*`` (and ``no_mem_embed``) of ``checkpoint`` when given."""
        if self.checkpoint is None:
            return
        state = dict(read_sam2_part(self.checkpoint, 'sam_mask_decoder.', 'iou_token.weight'))
        if self.no_mem_embed is not None:
            full = read_sam2_state_dict(self.checkpoint)
            if NO_MEM_EMBED_KEY in full:
                state[NO_MEM_EMBED_KEY] = full[NO_MEM_EMBED_KEY]
        own = self.state_dict()
        # SAM 2 has 4 mask tokens: surplus file heads are dropped, extra model heads (and
        # token / IoU rows) keep their initial values.
        state = {k: v for k, v in state.items()
                 if not (k.startswith('output_hypernetworks_mlps.')
                         and int(k.split('.')[1]) >= self.num_mask_tokens)}
        extra = [k for k in own if k.startswith('output_hypernetworks_mlps.') and k not in state]
        last_iou = f'iou_prediction_head.layers.{len(self.iou_prediction_head.layers) - 1}'
        for key in ('mask_tokens.weight', f'{last_iou}.weight', f'{last_iou}.bias'):
            if key in state and state[key].shape != own[key].shape \
                    and state[key].shape[1:] == own[key].shape[1:]:
                merged = own[key].clone()
                rows = min(len(merged), len(state[key]))
                merged[:rows] = state[key][:rows]
                state[key] = merged
        load_sam2_state(self, state, self.checkpoint, 'sam_mask_decoder', ignore_missing=extra,
                        hint='Check transformer_dim and the SAM 2 switches (use_high_res_features,'
                             ' pred_obj_scores, pred_obj_scores_mlp, no_mem_embed) against the '
                             'file.')

    def prepare_features(self, features: Sequence[torch.Tensor]
                         ) -> Tuple[torch.Tensor, Optional[List[torch.Tensor]]]:
        """The decoder's image inputs from ``SAM2ImageEncoder``'s FPN levels.

        Args:
            features (Sequence[Tensor]): (B, C, 4g, 4g), (B, C, 2g, 2g), (B, C, g, g) (only
                the last is needed without ``use_high_res_features``).

        Returns:
            tuple: the (B, C, g, g) image embedding (plus ``no_mem_embed``) and, with
            ``use_high_res_features``, [(B, C/8, 4g, 4g), (B, C/4, 2g, 2g)] (else None).
        """
        if isinstance(features, torch.Tensor):
            features = (features, )
        embedding = features[-1]
        if self.no_mem_embed is not None:
            embedding = embedding + self.no_mem_embed.reshape(1, -1, 1, 1)
        if not self.use_high_res_features:
            return embedding, None
        g = tuple(embedding.shape[-2:])
        levels = list(features[-3:-1]) if len(features) >= 3 else []
        expected = [(4 * g[0], 4 * g[1]), (2 * g[0], 2 * g[1])]
        if [tuple(f.shape[-2:]) for f in levels] != expected:
            raise ValueError(
                'SAM2MaskDecoder(use_high_res_features=True) needs SAM2ImageEncoder\'s FPN '
                f'levels: shapes {[tuple(f.shape) for f in features]} were given, expected the '
                f'last three at {expected[0]}, {expected[1]} and {g}. Use '
                "backbone=dict(type='SAM2ImageEncoder', ...) or set use_high_res_features=False")
        return embedding, [self.conv_s0(levels[0]), self.conv_s1(levels[1])]

    def decode_tokens(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_embeddings: torch.Tensor, dense_embeddings: torch.Tensor,
                      token_mask: Optional[torch.Tensor] = None, mask_mode: str = 'learnable',
                      adapters: Optional[nn.Module] = None, layout: Optional[dict] = None,
                      return_object_token: bool = False):
        """Run the two-way transformer, the i-th image embedding with the i-th prompt set.

        Args:
            image_embeddings (Tensor): (N, C, h, w) (from :meth:`prepare_features`).
            image_pe (Tensor): (1, C, h, w) or (N, C, h, w) positional encoding.
            sparse_embeddings (Tensor): (N, T, C) prompt tokens.
            dense_embeddings (Tensor): (N, C, h, w) or (1, C, h, w) dense prompt.
            token_mask (Tensor, optional): (N, 1 + num_mask_tokens + T, h * w) over the
                tokens in SAM 1's layout; the object-score token attends everywhere.
            mask_mode (str), adapters (nn.Module, optional), layout (dict, optional): see
                :func:`two_way_transformer_forward`.
            return_object_token (bool): also return the object-score token's output.

        Returns:
            tuple[Tensor, Tensor]: output tokens (N, 1 + num_mask_tokens + T, C) (IoU, mask,
            prompt tokens) and image features (N, C, h, w); plus the (N, C) object-score
            token (None without ``pred_obj_scores``) when ``return_object_token``.
        """
        n = image_embeddings.shape[0]
        if image_pe.shape[0] not in (1, n):
            raise ValueError(f'image_pe has batch {image_pe.shape[0]}; expected 1 or the '
                             f'{n} image embeddings')
        parts = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        output_tokens = torch.cat(parts, dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(n, -1, -1), sparse_embeddings],
                           dim=1)
        src = image_embeddings + dense_embeddings
        b, c, h, w = src.shape
        pe = image_pe.expand(n, -1, -1, -1)
        if token_mask is None and adapters is None:
            hs, src = self.transformer(src, pe, tokens)  # sam2's own path, exactly
        else:
            if token_mask is not None and self.pred_obj_scores:
                token_mask = torch.cat([token_mask.new_ones(n, 1, token_mask.shape[-1]),
                                        token_mask], dim=1)
            hs, src = two_way_transformer_forward(self.transformer, src, pe, tokens, token_mask,
                                                  mask_mode, adapters=adapters, layout=layout)
        src = src.transpose(1, 2).reshape(b, c, h, w)
        if not self.pred_obj_scores:
            return (hs, src, None) if return_object_token else (hs, src)
        return (hs[:, 1:], src, hs[:, 0]) if return_object_token else (hs[:, 1:], src)

    def upscale(self, src: torch.Tensor,
                high_res_features: Optional[Sequence[torch.Tensor]] = None) -> List[torch.Tensor]:
        """SAM 2's pixel decoder, keeping its two stages.

        Args:
            src (Tensor): (N, C, h, w) transformer image features.
            high_res_features (list[Tensor], optional): :meth:`prepare_features`'s
                [(N, C/8, 4h, 4w), (N, C/4, 2h, 2w)], added after each upsampling; required
                with ``use_high_res_features``.

        Returns:
            list[Tensor]: (N, C/4, 2h, 2w) and (N, C/8, 4h, 4w) features.
        """
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        if not self.use_high_res_features:
            half = act1(ln1(dc1(src)))
            return [half, act2(dc2(half))]
        if high_res_features is None:
            raise ValueError('SAM2MaskDecoder(use_high_res_features=True) needs the '
                             'high-resolution features of prepare_features()')
        feat_s0, feat_s1 = high_res_features
        half = act1(ln1(dc1(src) + feat_s1))
        return [half, act2(dc2(half) + feat_s0)]

    # The hypernetwork read-out is SAM 1's (same token layout and module names).
    masks_from_tokens = SAMMaskDecoder.masks_from_tokens

    def predict(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_embeddings: torch.Tensor, dense_embeddings: torch.Tensor,
                high_res_features: Optional[Sequence[torch.Tensor]] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decode masks, the i-th image embedding with the i-th prompt set.

        Args: see :meth:`decode_tokens` and :meth:`upscale`.

        Returns:
            tuple[Tensor, Tensor]: masks (N, num_mask_tokens, 4h, 4w) logits and IoU
            predictions (N, num_mask_tokens).
        """
        hs, src = self.decode_tokens(image_embeddings, image_pe, sparse_embeddings,
                                     dense_embeddings)
        return self.masks_from_tokens(hs, self.upscale(src, high_res_features)[-1])

    def single_mask(self, masks: torch.Tensor, iou: torch.Tensor
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """SAM 2's single-mask output: token 0, or at eval with
        ``dynamic_multimask_via_stability`` the best multimask output where token 0 is
        unstable (as ``MaskDecoder.forward(multimask_output=False)``).

        Args:
            masks (Tensor): (N, num_mask_tokens, H, W); iou (Tensor): (N, num_mask_tokens).

        Returns:
            tuple[Tensor, Tensor]: (N, 1, H, W) and (N, 1).
        """
        if self.dynamic_multimask_via_stability and not self.training:
            return self._dynamic_multimask_via_stability(masks, iou)
        return masks[:, :1], iou[:, :1]

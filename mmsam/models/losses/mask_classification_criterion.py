"""MaskSAM's set criterion: Hungarian matching, then class, mask and auxiliary mask/box losses."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmengine.dist import all_reduce, is_distributed
from mmengine.structures import InstanceData

from mmsam.registry import MODELS, TASK_UTILS
from ..utils.box_ops import box_giou
from ..utils.point_sampling import sample_uncertain_points


DEFAULT_LOSS_WEIGHTS = dict(cls=0.2, mask=1.5, dice=1.5, aux_mask=0.5, aux_dice=0.5,
                            aux_bbox=0.5, aux_giou=0.2)


def masksam_assigner(weights: dict) -> dict:
    """mmseg ``HungarianAssigner`` config with MaskSAM's 7 matching costs.

    Args:
        weights (dict): one weight per cost, keys as ``DEFAULT_LOSS_WEIGHTS``: cls
            (softmax class cost), mask / dice (sigmoid CE and Dice of the final masks),
            aux_mask / aux_dice (the same on the auxiliary masks), aux_bbox (box L1),
            aux_giou (-GIoU).

    Returns:
        dict: the assigner config, costs in that order.
    """
    ce = dict(type='CrossEntropyLossCost', use_sigmoid=True)
    dice = dict(type='DiceCost', pred_act=True, eps=1.0, naive_dice=True)
    return dict(type='HungarianAssigner', match_costs=[
        dict(type='ClassificationCost', weight=weights['cls']),
        dict(ce, weight=weights['mask']),
        dict(dice, weight=weights['dice']),
        dict(type='KeyedCost', cost=dict(ce, weight=weights['aux_mask']), pred_key='aux_masks'),
        dict(type='KeyedCost', cost=dict(dice, weight=weights['aux_dice']),
             pred_key='aux_masks'),
        dict(type='BoxL1Cost', weight=weights['aux_bbox']),
        dict(type='GIoUCost', weight=weights['aux_giou']),
    ])


@MODELS.register_module()
class MaskClassificationCriterion(nn.Module):
    """Hungarian-matched mask-classification losses over a batch of slices (MaskSAM §3).

    Per slice, the K targets (one per class present, background included) are matched to the
    Q queries under ``no_grad`` by the assigner, whose prediction fields are ``scores`` (class
    logits), ``masks`` / ``aux_masks`` (logits at P shared uniform points) and ``boxes``; the
    targets give ``labels``, ``masks`` (at the same points) and ``boxes``. Then, with
    M = max(1, number of targets in the batch, averaged over ranks):

    - ``loss_cls``: cross-entropy of all queries, unmatched ones labelled C (no object), class
      weights [1] * C + [eos_coef], weighted mean (divided by the sum of weights, as DETR);
    - ``loss_mask`` / ``loss_dice`` (and ``loss_aux_*`` on the aux masks): per matched pair,
      the mean BCE-with-logits and the Dice loss 1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)
      over P importance-sampled points (target values by bilinear sampling), summed / M;
    - ``loss_aux_bbox``: L1 of matched boxes summed / M; ``loss_aux_giou``: sum(1 - GIoU) / M.

    Each is multiplied by its ``loss_weights`` entry. Slices without targets only add
    no-object terms to ``loss_cls``.

    Args:
        num_classes (int): C, classes including the background (labels 0..C-1).
        loss_weights (dict | None): overrides of ``DEFAULT_LOSS_WEIGHTS`` (keys cls, mask,
            dice, aux_mask, aux_dice, aux_bbox, aux_giou).
        match_weights (dict | None): overrides of the matching cost weights (same keys, see
            :func:`masksam_assigner`); each cost not named takes its loss's weight, as the
            official matcher's costs and losses share their weights (a loss set to 0 drops
            its cost too).
        eos_coef (float): class weight of the no-object label.
        num_points (int | None): P, points per slice for matching and per pair for the mask
            losses; None uses every pixel exactly (predictions and targets same size).
        oversample_ratio (float): importance sampling candidates per point.
        importance_sample_ratio (float): fraction of the P loss points chosen by uncertainty.
        aux_mask_input (str): 'logits' (mmsam's reading: the aux masks are logits) or
            'probs': the aux masks are passed through a sigmoid first and then used as logits
            everywhere, reproducing the official code's double sigmoid.
    """

    def __init__(self, num_classes, loss_weights=None, match_weights=None, eos_coef=0.1,
                 num_points=32768, oversample_ratio=2.0, importance_sample_ratio=0.75,
                 aux_mask_input='logits'):
        super().__init__()
        for name, weights in (('loss_weights', loss_weights), ('match_weights', match_weights)):
            unknown = set(weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
            if unknown:
                raise KeyError(f'MaskClassificationCriterion: unknown {name} keys '
                               f'{sorted(unknown)}; valid: {sorted(DEFAULT_LOSS_WEIGHTS)}')
        if aux_mask_input not in ('logits', 'probs'):
            raise ValueError(f"MaskClassificationCriterion: aux_mask_input must be 'logits' "
                             f"or 'probs', got {aux_mask_input!r}")
        self.num_classes = int(num_classes)
        self.loss_weights = dict(DEFAULT_LOSS_WEIGHTS, **(loss_weights or {}))
        self.match_weights = dict(self.loss_weights, **(match_weights or {}))
        self.assigner = TASK_UTILS.build(masksam_assigner(self.match_weights))
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.aux_mask_input = aux_mask_input
        class_weight = torch.ones(self.num_classes + 1)
        class_weight[-1] = eos_coef
        self.register_buffer('class_weight', class_weight, persistent=False)

    def forward(self, cls_logits, mask_logits, aux_mask_logits, aux_boxes, targets):
        """Args:
            cls_logits (Tensor): (N_s, Q, C + 1) class logits, index C = no object.
            mask_logits (Tensor): (N_s, Q, H, W) final mask logits.
            aux_mask_logits (Tensor): (N_s, Q, h, w) auxiliary (prompt generator) mask
                logits, or probabilities with ``aux_mask_input='probs'``.
            aux_boxes (Tensor): (N_s, Q, 4) predicted normalised xyxy boxes.
            targets (list[dict]): N_s dicts with ``labels`` (K,) long, ``masks`` (K, H', W')
                bool/float and ``boxes`` (K, 4) normalised xyxy; K may be 0.

        Returns:
            dict[str, Tensor]: weighted scalars loss_cls, loss_mask, loss_dice, loss_aux_mask,
            loss_aux_dice, loss_aux_bbox, loss_aux_giou.
        """
        self._check_inputs(cls_logits, mask_logits, aux_mask_logits, aux_boxes, targets)
        if self.aux_mask_input == 'probs':
            aux_mask_logits = aux_mask_logits.sigmoid()
        matches = self.match(cls_logits, mask_logits, aux_mask_logits, aux_boxes, targets,
                             _checked=True)
        slice_idx = torch.cat([torch.full_like(q, i) for i, (q, _) in enumerate(matches)])
        query_idx = torch.cat([q for q, _ in matches])

        target_classes = cls_logits.new_full(cls_logits.shape[:2], self.num_classes,
                                             dtype=torch.long)
        target_classes[slice_idx, query_idx] = torch.cat(
            [t['labels'][k] for t, (_, k) in zip(targets, matches)]).long()
        loss_cls = F.cross_entropy(cls_logits.flatten(0, 1).float(), target_classes.flatten(),
                                   weight=self.class_weight.float())

        num_targets = self._num_targets(targets, cls_logits.device)
        tgt_masks = torch.cat([t['masks'][k] for t, (_, k) in zip(targets, matches)]).float()
        tgt_boxes = torch.cat([t['boxes'][k] for t, (_, k) in zip(targets, matches)]).float()
        loss_mask, loss_dice = self._mask_losses(mask_logits[slice_idx, query_idx], tgt_masks,
                                                 num_targets)
        loss_aux_mask, loss_aux_dice = self._mask_losses(
            aux_mask_logits[slice_idx, query_idx], tgt_masks, num_targets)
        src_boxes = aux_boxes[slice_idx, query_idx].float()
        loss_bbox = (src_boxes - tgt_boxes).abs().sum() / num_targets
        loss_giou = (1 - box_giou(src_boxes, tgt_boxes)).sum() / num_targets

        w = self.loss_weights
        return dict(loss_cls=w['cls'] * loss_cls, loss_mask=w['mask'] * loss_mask,
                    loss_dice=w['dice'] * loss_dice, loss_aux_mask=w['aux_mask'] * loss_aux_mask,
                    loss_aux_dice=w['aux_dice'] * loss_aux_dice,
                    loss_aux_bbox=w['aux_bbox'] * loss_bbox,
                    loss_aux_giou=w['aux_giou'] * loss_giou)

    @torch.no_grad()
    def match(self, cls_logits, mask_logits, aux_mask_logits, aux_boxes, targets,
              _checked=False):
        """Hungarian matching of each slice's queries to its targets.

        Args: as :meth:`forward` (``aux_mask_logits`` already as logits: no 'probs' sigmoid
            is applied here).

        Returns:
            list[tuple[Tensor, Tensor]]: per slice, matched query and target indices (long,
            min(Q, K) each; empty for a slice without targets).
        """
        if not _checked:
            self._check_inputs(cls_logits, mask_logits, aux_mask_logits, aux_boxes, targets)
        empty = cls_logits.new_zeros(0, dtype=torch.long)
        matches = []
        for i, target in enumerate(targets):
            if len(target['labels']) == 0:
                matches.append((empty, empty))
                continue
            masks = [mask_logits[i], aux_mask_logits[i], target['masks']]
            if self.num_points is None:
                masks = [m.flatten(1).float() for m in masks]
            else:  # one set of uniform points for all queries and targets of the slice
                points = torch.rand(1, self.num_points, 2, device=cls_logits.device)
                masks = [point_sample(m[:, None].float(), points.expand(len(m), -1, -1),
                                      align_corners=False)[:, 0] for m in masks]
            pred = InstanceData(scores=cls_logits[i].float(), masks=masks[0],
                                aux_masks=masks[1], boxes=aux_boxes[i].float())
            gt = InstanceData(labels=target['labels'].long(), masks=masks[2],
                              boxes=target['boxes'].float())
            query_idx, target_idx = self.assigner.assign(pred, gt)
            matches.append((query_idx.long().to(cls_logits.device),
                            target_idx.long().to(cls_logits.device)))
        return matches

    def _mask_losses(self, logits, targets, num_targets):
        """Summed BCE and Dice losses of (N_m, H, W) logits vs (N_m, H', W') targets, / M."""
        if len(logits) == 0:  # keep the graph connected for DDP
            zero = logits.sum() * 0
            return zero, zero
        logits = logits.float()
        if self.num_points is None:
            logits, labels = logits.flatten(1), targets.flatten(1)
        else:
            points = sample_uncertain_points(logits[:, None], self.num_points,
                                             self.oversample_ratio, self.importance_sample_ratio)
            labels = point_sample(targets[:, None], points, align_corners=False)[:, 0]
            logits = point_sample(logits[:, None], points, align_corners=False)[:, 0]
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction='none').mean(1)
        probs = logits.sigmoid()
        dice = 1 - (2 * (probs * labels).sum(1) + 1) / (probs.sum(1) + labels.sum(1) + 1)
        return bce.sum() / num_targets, dice.sum() / num_targets

    @staticmethod
    def _num_targets(targets, device):
        """M = max(1, targets in the batch), averaged over ranks when distributed."""
        num = torch.tensor(float(sum(len(t['labels']) for t in targets)), device=device)
        if is_distributed():
            all_reduce(num, op='mean')
        return num.clamp(min=1)

    def _check_inputs(self, cls_logits, mask_logits, aux_mask_logits, aux_boxes, targets):
        n, q = cls_logits.shape[:2]
        num_logits = self.num_classes + 1
        checks = [('cls_logits', cls_logits, cls_logits.shape[2:] == (num_logits,)),
                  ('mask_logits', mask_logits, mask_logits.dim() == 4),
                  ('aux_mask_logits', aux_mask_logits, aux_mask_logits.dim() == 4),
                  ('aux_boxes', aux_boxes, aux_boxes.shape[2:] == (4,))]
        for name, tensor, ok in checks:
            if not ok or tuple(tensor.shape[:2]) != (n, q):
                raise ValueError(f'MaskClassificationCriterion: {name} has shape '
                                 f'{tuple(tensor.shape)}; expected (N_s, Q, C+1), (N_s, Q, H, W) '
                                 f'or (N_s, Q, 4) with N_s={n}, Q={q}, C+1={self.num_classes + 1}')
        exact = self.num_points is None
        if exact and aux_mask_logits.shape[2:] != mask_logits.shape[2:]:
            raise ValueError(f'MaskClassificationCriterion: num_points=None needs aux masks '
                             f'{tuple(aux_mask_logits.shape[2:])} at the mask resolution '
                             f'{tuple(mask_logits.shape[2:])}')
        if len(targets) != n:
            raise ValueError(f'MaskClassificationCriterion: {len(targets)} targets for {n} '
                             f'slices; give one dict per slice')
        for i, t in enumerate(targets):
            k = len(t['labels'])
            if t['masks'].dim() != 3 or len(t['masks']) != k or tuple(t['boxes'].shape) != (k, 4):
                raise ValueError(f'MaskClassificationCriterion: targets[{i}] has {k} labels, '
                                 f'masks {tuple(t["masks"].shape)}, boxes '
                                 f'{tuple(t["boxes"].shape)}; expected (K, H, W) and (K, 4)')
            if k and not 0 <= int(t['labels'].min()) <= int(t['labels'].max()) < num_logits - 1:
                raise ValueError(f'MaskClassificationCriterion: targets[{i}] labels '
                                 f'{t["labels"].tolist()} must lie in [0, {self.num_classes}) '
                                 f'(num_classes counts the background; {self.num_classes} is '
                                 f'the no-object label)')
            if exact and t['masks'].shape[1:] != mask_logits.shape[2:]:
                raise ValueError(f'MaskClassificationCriterion: num_points=None needs targets '
                                 f'at the mask resolution {tuple(mask_logits.shape[2:])}, '
                                 f'targets[{i}] masks are {tuple(t["masks"].shape[1:])}')

"""One SAM 2 training sequence: prompts on conditioning slices, memory tracking, losses.

What SAM 2's ``SAM2Train`` (and MedSAM2, which trains with it) does per batch of videos,
written for mmsam's slice sequences with a key slice, on top of SAM2Base's per-frame methods
(``_track_step``, ``_forward_sam_heads``, ``_encode_memory_in_output``) and sam2's prompt
samplers (``sample_box_points``, ``get_next_point``):

1. draw the prompt kind (points with ``prob_point_input``, a box among them with
   ``prob_box_given_points``; else the ground-truth masks), the initial conditioning slices (the
   key slice, plus up to ``num_init_cond_frames - 1`` random others) and, with points, the
   slices that get ``num_correction_points`` correction clicks (the conditioning ones plus up to
   ``num_frames_to_correct`` in all);
2. track: conditioning slices first (no memory), then the slices after the key forwards and
   the slices before it backwards (``track_in_reverse``; with the key on slice 0, as MedSAM2's
   sampler puts it, this is SAM2Train's order); a corrected slice joins the conditioning memory;
3. :func:`sam2_step_losses` on every prediction step (the tracked mask and each correction).

Where this differs from SAM2Train: the extra conditioning / correction slices are drawn among
the slices that show the object in every case of the group (SAM2Train draws among all frames of
a video, whose object the first frame shows); random numbers come from torch's global generator
(seeded by the runner) instead of a NumPy generator seeded 42.
"""
from typing import Callable, Dict, List, Sequence

import torch
from sam2.modeling.sam2_utils import get_next_point, sample_box_points
from sam2.utils.misc import concat_points

from .sam2_memory_losses import sam2_step_losses


def _draw(candidates: Sequence[int], count: int) -> List[int]:
    """``count`` distinct random elements of ``candidates`` (fewer if there are fewer)."""
    candidates = list(candidates)
    order = torch.randperm(len(candidates)).tolist()
    return [candidates[i] for i in order[:max(count, 0)]]


def _randint_inclusive(low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, ()).item())


def sequence_schedule(num_frames: int, key: int, visible: Sequence[int], cfg: Dict) -> Dict:
    """Step 1: prompt kind, conditioning slices and slices to correct.

    Args:
        num_frames (int): T.
        key (int): the key slice.
        visible (Sequence[int]): slices that may be drawn as extra conditioning / corrected.
        cfg (dict): the segmentor's ``train_cfg``.

    Returns:
        dict: ``use_points``, ``use_box`` (bool), ``init`` (list, key first), ``correct`` (list).
    """
    use_points = bool(torch.rand(()) < cfg['prob_point_input'])
    others = [t for t in visible if t != key]
    num_init = _randint_inclusive(1, cfg['num_init_cond_frames']) \
        if cfg['num_init_cond_frames'] > 1 else 1
    init = [key] + _draw(others, num_init - 1)
    correct = []
    if use_points and cfg['num_correction_points'] > 0:
        num_correct = max(cfg['num_frames_to_correct'], len(init))
        num_correct = _randint_inclusive(len(init), num_correct)
        correct = init + _draw([t for t in others if t not in init], num_correct - len(init))
    use_box = use_points and bool(torch.rand(()) < cfg['prob_box_given_points'])
    return dict(use_points=use_points, use_box=use_box, init=init, correct=correct)


def _initial_prompt(gt: torch.Tensor, schedule: Dict, cfg: Dict):
    """(point_inputs, mask_inputs) of a conditioning slice from its (N, 1, H, W) target."""
    if not schedule['use_points']:
        return None, gt.float()
    if schedule['use_box']:
        coords, labels = sample_box_points(gt.bool(), noise=cfg['box_noise'],
                                           noise_bound=cfg['box_noise_bound'])
    else:
        coords, labels = get_next_point(gt_masks=gt.bool(), pred_masks=None, method='uniform')
    return dict(point_coords=coords, point_labels=labels), None


def _frame_step(tracker, frame_idx, is_init, feats, pos, sizes, point_inputs, mask_inputs, gt,
                corrections, bank, num_frames, reverse, cfg):
    """Track one slice (and correct it with clicks): its memory entry and its prediction steps
    as (multimask logits, IoUs, object logits)."""
    current, outputs, high_res_features, pix_feat = tracker._track_step(
        frame_idx, is_init, feats, pos, sizes, point_inputs, mask_inputs, bank, num_frames,
        reverse, None)
    low_multi, high_multi, ious, low, high, obj_ptr, obj_logits = outputs
    steps = [(high_multi, ious, obj_logits)]
    for _ in range(corrections):
        from_gt = bool(torch.rand(()) < cfg['prob_click_from_gt'])
        points, labels = get_next_point(gt_masks=gt.bool(),
                                        pred_masks=None if from_gt else high > 0,
                                        method='uniform')
        point_inputs = concat_points(point_inputs, points, labels)
        low_multi, high_multi, ious, low, high, obj_ptr, obj_logits = \
            tracker._forward_sam_heads(
                backbone_features=pix_feat, point_inputs=point_inputs, mask_inputs=low,
                high_res_features=high_res_features,
                multimask_output=tracker._use_multimask(is_init, point_inputs))
        steps.append((high_multi, ious, obj_logits))
    current.update(pred_masks=low, pred_masks_high_res=high, obj_ptr=obj_ptr)
    tracker._encode_memory_in_output(feats, sizes, point_inputs, True, high, obj_logits, current)
    return current, steps


def sequence_losses(tracker, features: Callable[[int], tuple], sizes: List, targets: torch.Tensor,
                    key: int, cfg: Dict) -> Dict[str, torch.Tensor]:
    """Steps 1-3 for N cases that share the key slice.

    Args:
        tracker (SAM2MemoryTracker): in training mode.
        features (Callable): slice index -> (vision_feats, vision_pos_embeds) of the N cases,
            levels of (h*w, N, C).
        sizes (list[tuple]): the levels' (h, w).
        targets (Tensor): (N, T, H, W) 0/1 ground truth at the tracker's image size.
        key (int): the key slice (showing the object in every case).
        cfg (dict): the segmentor's ``train_cfg``.

    Returns:
        dict[str, Tensor]: ``mask``, ``dice``, ``iou``, ``occlusion`` summed over steps, slices
        and cases (unweighted, not divided by the number of cases).
    """
    num_frames = targets.shape[1]
    visible = [t for t in range(num_frames) if bool(targets[:, t].flatten(1).any(-1).all())]
    schedule = sequence_schedule(num_frames, key, visible, cfg)
    cond: Dict[int, Dict] = {}
    banks = {False: dict(cond_frame_outputs=cond, non_cond_frame_outputs={}),
             True: dict(cond_frame_outputs=cond, non_cond_frame_outputs={})}
    order = [(t, False) for t in schedule['init']]
    order += [(t, False) for t in range(key + 1, num_frames) if t not in schedule['init']]
    order += [(t, True) for t in range(key - 1, -1, -1) if t not in schedule['init']]
    totals = dict(mask=0, dice=0, iou=0, occlusion=0)
    for t, reverse in order:
        gt = targets[:, t:t + 1]
        is_init = t in schedule['init']
        point_inputs, mask_inputs = _initial_prompt(gt, schedule, cfg) if is_init else (None,
                                                                                         None)
        feats, pos = features(t)
        corrections = cfg['num_correction_points'] if t in schedule['correct'] else 0
        out, steps = _frame_step(tracker, t, is_init, feats, pos, sizes, point_inputs,
                                 mask_inputs, gt, corrections, banks[reverse], num_frames,
                                 reverse, cfg)
        if is_init or corrections:
            cond[t] = out
        else:
            banks[reverse]['non_cond_frame_outputs'][t] = out
        for multimask, ious, obj_logits in steps:
            losses = sam2_step_losses(multimask, ious, obj_logits, gt, cfg['loss_weights'],
                                      cfg['focal_alpha'], cfg['focal_gamma'])
            for name, value in losses.items():
                totals[name] = totals[name] + value
    return totals

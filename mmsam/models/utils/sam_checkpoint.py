"""Loading SAM weights in the official key layout (``image_encoder.*``, ``prompt_encoder.*``,
``mask_decoder.*``), shared by the encoder, prompt encoder and mask decoder wrappers.

MedSAM checkpoints use the same layout. External weight files are always read with
``weights_only=True``: they are tensors only, and nothing else is unpickled from them.
"""
import os.path as osp
from functools import lru_cache

import torch
import torch.nn.functional as F
from mmengine.logging import print_log

SAM_CHECKPOINT_HELP = (
    'Official SAM weights (sam_vit_b_01ec64.pth, sam_vit_l_0b3195.pth, sam_vit_h_4b8939.pth) are '
    'linked in the "Model Checkpoints" section of the segment-anything README '
    '(https://github.com/facebookresearch/segment-anything#model-checkpoints); MedSAM weights '
    '(medsam_vit_b.pth) in the MedSAM README. A model trained with mmsam becomes such a file '
    'with tools/model_converters/mmsam2sam.py (the synthetic-lesion configs start from '
    'checkpoints/tiny-medsam_synthetic-lesion.pth made that way: see configs/medsam/README.md). '
    'Put the file at the configured path (by default under checkpoints/), or set the path with '
    '--cfg-options.')


@lru_cache(maxsize=2)
def read_weight_file(path, mtime, kind='SAM', help_text=SAM_CHECKPOINT_HELP,
                     wrapper_keys=('state_dict', 'model')):
    """Read a weight file weights-only, once per (path, mtime): a model's parts share one read.

    Args:
        path (str): absolute path; mtime (float): its modification time (the cache key).
        kind (str): what the file should be, for the messages ('SAM', 'SAM 2').
        help_text (str): where such files come from, appended to the messages.
        wrapper_keys (tuple[str]): dict keys unwrapped in this order ({'model': sd}, ...).

    Returns:
        dict[str, Tensor]: the state dict.
    """
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  torch raises many types for bad files
        raise RuntimeError(f'cannot read {kind} checkpoint {path}: {err}. It is not a torch '
                           f'weight file (or is truncated). {help_text}') from err
    for wrapper_key in wrapper_keys:
        if isinstance(obj, dict) and isinstance(obj.get(wrapper_key), dict):
            obj = obj[wrapper_key]
    if not isinstance(obj, dict):
        raise RuntimeError(f'{kind} checkpoint {path} holds a {type(obj).__name__}, '
                           f'not a state dict. {help_text}')
    return obj


def read_sam_part(path, prefix, marker_key):
    """Read the weights of one SAM part from an official file or a part-only state dict.

    Args:
        path (str): checkpoint file.
        prefix (str): the part's key prefix in the official layout, e.g. ``'image_encoder.'``.
        marker_key (str): a key every part-only state dict has, e.g. ``'patch_embed.proj.weight'``.

    Returns:
        dict[str, Tensor]: the part's weights with ``prefix`` removed.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'SAM checkpoint {path} not found. {SAM_CHECKPOINT_HELP}')
    state = read_weight_file(osp.abspath(path), osp.getmtime(path))
    part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if part:
        return part
    if marker_key in state:
        return dict(state)
    examples = ', '.join(list(state)[:5])
    raise KeyError(f'SAM checkpoint {path} has no {prefix[:-1]} weights: expected keys '
                   f"'{prefix}*' (official SAM/MedSAM layout) or a {prefix[:-1]}-only state dict "
                   f"with '{marker_key}'; found keys like {examples}")


# How an absolute position table made for another input size is resized: 'bicubic' is
# mmsam's default; 'bilinear' is what SAMed's and H-SAM's official ``build_sam.load_from`` does
# (F.interpolate, align_corners=False), so a model trained by their code sees the same table;
# 'top_left' keeps the table's top-left corner unchanged, as MaskSAM's official encoder does
# (``pos_embed[:, :h, :w]``: a smaller input sits in the top-left of SAM's 1024 frame).
POS_EMBED_RESIZE_MODES = ('bicubic', 'bilinear', 'top_left')


def resize_abs_pos_embed(pos_embed, size, mode='bicubic'):
    """Resize an absolute position table to a new token grid.

    Args:
        pos_embed (Tensor): (1, H, W, C) table.
        size (tuple[int, int]): target (H', W').
        mode (str): one of :data:`POS_EMBED_RESIZE_MODES` (align_corners False).

    Returns:
        Tensor: (1, H', W', C).
    """
    if mode not in POS_EMBED_RESIZE_MODES:
        raise ValueError(f'pos_embed resize mode {mode!r} is not one of {POS_EMBED_RESIZE_MODES}')
    if tuple(pos_embed.shape[1:3]) == tuple(size):
        return pos_embed
    if mode == 'top_left':
        if size[0] > pos_embed.shape[1] or size[1] > pos_embed.shape[2]:
            raise ValueError(f"pos_embed resize mode 'top_left' crops the table; a "
                             f'{tuple(pos_embed.shape[1:3])} table has no {tuple(size)} corner')
        return pos_embed[:, :size[0], :size[1]].clone()
    resized = F.interpolate(pos_embed.permute(0, 3, 1, 2).float(), size=tuple(size), mode=mode,
                            align_corners=False)
    return resized.permute(0, 2, 3, 1).to(pos_embed.dtype)


def resize_rel_pos(rel_pos, length):
    """Resize a decomposed relative position table to a new length (linear).

    This equals SAMed's / H-SAM's official resize (a 2-D bilinear ``F.interpolate`` of the
    (1, 1, L, C) table to (L', C), align_corners False: with the width unchanged, bilinear is
    linear along L), and it is applied to the tables whose length differs, which are the
    global-attention blocks' (the windowed blocks' tables depend on the window only).

    Args:
        rel_pos (Tensor): (L, C) table, L = 2 * tokens - 1.
        length (int): target L'.

    Returns:
        Tensor: (L', C).
    """
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(rel_pos.t()[None].float(), size=length, mode='linear',
                            align_corners=False)
    return resized[0].t().to(rel_pos.dtype)


def load_part_state_dict(module, state, path, part_name, ignore_missing=(), row_partial=()):
    """Load ``state`` into ``module`` and fail with the key lists when they do not fit.

    Args:
        module (nn.Module): target.
        state (dict[str, Tensor]): weights with the module's own key names.
        path (str): the file they came from, for messages.
        part_name (str): e.g. ``'image_encoder'``, for messages.
        ignore_missing (Iterable[str]): keys the module may keep at their initial values
            (adapter weights that the checkpoint cannot have).
        row_partial (Iterable[str]): keys whose first dimension may differ from the file's
            (e.g. more mask tokens than SAM's 4): the rows both have are copied, the others
            keep their initial values.
    """
    own = module.state_dict()
    ignore_missing, row_partial = set(ignore_missing), set(row_partial)
    missing = sorted(set(own) - set(state) - ignore_missing)
    unexpected = sorted(set(state) - set(own))
    wrong_shape = []
    to_load = {}
    partially = []
    for key, value in state.items():
        if key not in own:
            continue
        if value.shape == own[key].shape:
            to_load[key] = value
        elif key in row_partial and value.shape[1:] == own[key].shape[1:]:
            rows = min(value.shape[0], own[key].shape[0])
            merged = own[key].clone()
            merged[:rows] = value[:rows]
            to_load[key] = merged
            partially.append(f'{key} ({rows} of {own[key].shape[0]} rows)')
        else:
            wrong_shape.append(f'{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}')
    problems = []
    if missing:
        problems.append(f'missing keys {missing}')
    if unexpected:
        problems.append(f'unexpected keys {unexpected}')
    if wrong_shape:
        problems.append(f'shape mismatches {wrong_shape}')
    if problems:
        raise RuntimeError(f'SAM checkpoint {path} does not fit the {part_name} built from the '
                           f'config ({"; ".join(problems)}). Check that the checkpoint matches '
                           "the config's arch (vit_b/vit_l/vit_h).")
    module.load_state_dict(to_load, strict=False)
    message = f'loaded {part_name} from {path}'
    if partially:
        message += f'; partially loaded (extra rows keep their init): {partially}'
    print_log(message, logger='current')

"""Loading SAM 2 weights in the official key layout, shared by the SAM 2 components.

Official SAM 2 / 2.1 files (``sam2.1_hiera_tiny.pt`` ...) and MedSAM2's (``MedSAM2_latest.pt``)
hold ``{'model': state_dict}`` with keys ``image_encoder.*``, ``sam_prompt_encoder.*``,
``sam_mask_decoder.*``, ``memory_attention.*``, ``memory_encoder.*``, ``maskmem_tpos_enc``,
``no_mem_embed``, ... Every mmsam component loads its own prefix strictly. External weight files
are read with ``weights_only=True``: tensors only, nothing else is unpickled from them.
"""
import os.path as osp
from typing import Dict, Iterable, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .sam_checkpoint import read_weight_file

SAM2_CHECKPOINT_HELP = (
    'Official SAM 2.1 weights (sam2.1_hiera_tiny.pt, sam2.1_hiera_small.pt, '
    'sam2.1_hiera_base_plus.pt, sam2.1_hiera_large.pt) are linked in the "Download Checkpoints" '
    'section of the SAM 2 README (https://github.com/facebookresearch/sam2#download-checkpoints), '
    'e.g. https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt (SAM 2.0 '
    'files under .../segment_anything_2/072824/); MedSAM2 weights (MedSAM2_latest.pt, same '
    'layout, SAM 2.1-tiny) are on Hugging Face: https://huggingface.co/wanglab/MedSAM2. Nothing '
    'is downloaded at run time: put the file at the configured path (by default under '
    'checkpoints/), or set the path with --cfg-options.')


def read_sam2_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The whole state dict of an official SAM 2 file (``{'model': ...}`` unwrapped).

    Args:
        path (str): checkpoint file.

    Returns:
        dict[str, Tensor]: all weights, official key names (shared, do not modify in place).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'SAM 2 checkpoint {path} not found. {SAM2_CHECKPOINT_HELP}')
    return read_weight_file(osp.abspath(path), osp.getmtime(path), 'SAM 2', SAM2_CHECKPOINT_HELP,
                            ('model', 'state_dict'))


def read_sam2_part(path: str, prefix: str, marker_key: Optional[str] = None
                   ) -> Dict[str, torch.Tensor]:
    """Read one part's weights from an official SAM 2 file or a part-only state dict.

    Args:
        path (str): checkpoint file.
        prefix (str): the part's prefix in the official layout, e.g. ``'image_encoder.'``.
        marker_key (str, optional): a key every part-only state dict has (e.g.
            ``'trunk.patch_embed.proj.weight'``); a file with it and without ``prefix`` keys
            is taken as the part itself.

    Returns:
        dict[str, Tensor]: the part's weights with ``prefix`` removed.
    """
    state = read_sam2_state_dict(path)
    part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if part:
        return part
    if marker_key is not None and marker_key in state:
        return dict(state)
    examples = ', '.join(list(state)[:5])
    alternative = f" or a part-only dict with '{marker_key}'" if marker_key else ''
    raise KeyError(f"SAM 2 checkpoint {path} has no '{prefix}*' weights (official SAM 2 / "
                   f'MedSAM2 layout{alternative}); found keys like {examples}. '
                   f'{SAM2_CHECKPOINT_HELP}')


def load_sam2_state(module: nn.Module, state: Dict[str, torch.Tensor], path: str,
                    part_name: str, ignore_missing: Iterable[str] = (),
                    hint: str = '') -> None:
    """Load ``state`` into ``module`` strictly; fail naming the file and every bad key.

    Args:
        module (nn.Module): target.
        state (dict[str, Tensor]): weights under the module's own key names.
        path (str): the file they came from (for messages).
        part_name (str): e.g. ``'image_encoder'`` (for messages).
        ignore_missing (Iterable[str]): keys the module may keep at their initial values
            (adapter weights a SAM 2 file cannot have).
        hint (str): what to check when keys do not fit (e.g. the config's arch).
    """
    own = module.state_dict()
    ignore_missing = set(ignore_missing)
    missing = sorted(set(own) - set(state) - ignore_missing)
    unexpected = sorted(set(state) - set(own))
    wrong_shape = [f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                   for k, v in state.items() if k in own and v.shape != own[k].shape]
    problems = [f'{what} {keys}' for what, keys in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches', wrong_shape)) if keys]
    if problems:
        raise RuntimeError(f'SAM 2 checkpoint {path} does not fit the {part_name} built from the '
                           f'config ({"; ".join(problems)}). {hint}'.rstrip())
    module.load_state_dict(state, strict=False)
    print_log(f'loaded {part_name} from {path}', logger='current')


def load_sam2_part(module: nn.Module, path: str, prefix: str, part_name: Optional[str] = None,
                   ignore_missing: Iterable[str] = (), marker_key: Optional[str] = None,
                   hint: str = '') -> None:
    """Read ``prefix`` from an official SAM 2 file and load it into ``module`` strictly.

    Args:
        module (nn.Module): target; its keys are the official ones without ``prefix``.
        path (str): checkpoint file.
        prefix (str): e.g. ``'image_encoder.'``, ``'sam_mask_decoder.'``.
        part_name (str, optional): for messages; defaults to ``prefix`` without the dot.
        ignore_missing, hint: see :func:`load_sam2_state`; marker_key: see
            :func:`read_sam2_part`.
    """
    state = read_sam2_part(path, prefix, marker_key)
    load_sam2_state(module, state, path, part_name or prefix.rstrip('.'), ignore_missing, hint)

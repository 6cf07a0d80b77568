"""Checking mmsam against an official implementation's outputs (a fixture folder).

A fixture folder holds the official weight file(s) exactly as a user holds them, ``inputs.pt``,
the official ``outputs.pt`` and ``meta.json`` (architecture, quirks). :func:`check_fixture`
builds the model of the method's paper-table config with the widths of ``meta.json``,
converts the official file(s) with the method's converter, loads them strictly, runs
``inputs.pt`` through mmsam's data preprocessor and model, and compares every key of
``outputs.pt``. Each source module registers its case with :func:`register_case`.
"""
import contextlib
import json
import logging
import os.path as osp
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from torch import Tensor

TOLERANCE = 1e-5
_CASES = {}

# The meta.json fields mmsam's SAM components take; the other fields must have the value
# the components hard-code (SAM's own), else the check stops and says which.
_FIXED_SAM_FIELDS = dict(encoder_layernorm_eps=1e-6, qkv_bias=True, use_rel_pos=True,
                         attention_downsample_rate=2, decoder_layernorm_eps=1e-5)


def register_case(name: str, config: str) -> Callable[[Callable], Callable]:
    """Register ``runner(fixture_dir, meta, cfg, attn_impl) -> (outputs, notes)`` for ``name``.

    Args:
        name (str): ``meta.json``'s ``case``.
        config (str): the paper-table config, relative to the repository root.
    """
    def wrap(runner):
        _CASES[name] = (runner, config)
        return runner
    return wrap


def registered_cases() -> Dict[str, str]:
    """``{case name: default config}`` of the supported fixture cases."""
    _import_sources()
    return {name: config for name, (_, config) in _CASES.items()}


def _import_sources():
    # the sources register their cases on import
    from . import hf_sam, hsam, masksam, medsam, psam, samed  # noqa: F401


def load_fixture(fixture_dir: str) -> Tuple[dict, Dict[str, Tensor], Dict[str, Tensor]]:
    """``meta`` (dict), ``inputs`` and ``outputs`` (dicts of tensors) of a fixture folder."""
    meta_path = osp.join(fixture_dir, 'meta.json')
    if not osp.isfile(meta_path):
        raise FileNotFoundError(f'{fixture_dir} has no meta.json: not a fixture folder')
    with open(meta_path) as f:
        meta = json.load(f)
    tensors = {}
    for name in ('inputs', 'outputs'):
        path = osp.join(fixture_dir, f'{name}.pt')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{fixture_dir} has no {name}.pt')
        tensors[name] = torch.load(path, map_location='cpu', weights_only=True)
    return meta, tensors['inputs'], tensors['outputs']


def sam_widths(model_cfg: ConfigDict, arch: dict, attn_impl: str,
               head_parts: Tuple[str, ...] = ('prompt_encoder', 'mask_decoder')) -> None:
    """Set a SAM segmentor config's widths to ``meta.json``'s ``arch`` (in place).

    Only sizes change (and every ``checkpoint`` is cleared: the weights come from the
    converter); the config's switches (position-table resize, normalisation, ...) stay as
    the config has them, which is what the check tests.

    Args:
        model_cfg (ConfigDict): ``cfg.model`` of a SAM segmentor config.
        arch (dict): ``meta.json``'s ``arch``.
        attn_impl (str): the encoder's ``attn_impl``.
        head_parts (tuple[str]): the head's SAM parts to resize.
    """
    for field, value in _FIXED_SAM_FIELDS.items():
        if field in arch and arch[field] != value:
            raise ValueError(f'meta.json arch.{field}={arch[field]!r}, but mmsam\'s SAM '
                             f'components have {value!r} and no switch for it')
    img, patch = arch['img_size'], arch['patch_size']
    backbone = model_cfg.backbone
    backbone.arch = dict(embed_dim=arch['encoder_embed_dim'], depth=arch['encoder_depth'],
                         num_heads=arch['encoder_num_heads'],
                         global_attn_indexes=tuple(arch['encoder_global_attn_indexes']),
                         patch_size=patch, window_size=arch['window_size'],
                         out_chans=arch['out_chans'], mlp_ratio=float(arch['mlp_ratio']))
    backbone.update(img_size=img, checkpoint=None, attn_impl=attn_impl)
    head = model_cfg.decode_head
    if 'prompt_encoder' in head_parts:
        head.prompt_encoder.update(embed_dim=arch['prompt_embed_dim'], img_size=img,
                                   patch_size=patch, mask_in_chans=arch['mask_in_chans'],
                                   checkpoint=None)
    if 'mask_decoder' in head_parts:
        head.mask_decoder.update(
            transformer_dim=arch['prompt_embed_dim'],
            transformer_depth=arch['decoder_transformer_depth'],
            transformer_mlp_dim=arch['decoder_transformer_mlp_dim'],
            transformer_num_heads=arch['decoder_num_heads'],
            iou_head_depth=arch['iou_head_depth'], iou_head_hidden_dim=arch['iou_head_hidden_dim'],
            checkpoint=None)
    model_cfg.data_preprocessor.size = (img, img)


def build_model(model_cfg: ConfigDict) -> nn.Module:
    """Build (eval mode) the model of a config dict under mmsam's default scope."""
    from mmsam.registry import MODELS
    from mmsam.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    model = MODELS.build(model_cfg)
    return model.eval()


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """Keep mmengine's per-parameter initialisation report out of the check's output."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def max_abs_diffs(official: Dict[str, Tensor],
                  ours: Dict[str, Tensor]) -> Dict[str, Optional[float]]:
    """Per key of ``official``: the max abs difference to ``ours`` (None: not produced).

    Shapes must agree; integer and boolean outputs (labels, masks) compare as floats, so one
    differing pixel counts as 1.
    """
    diffs = {}
    for key, ref in official.items():
        if key not in ours:
            diffs[key] = None
            continue
        ref_t = torch.as_tensor(ref).double()
        got = torch.as_tensor(ours[key]).detach().double()
        if ref_t.shape != got.shape:
            raise ValueError(f'output {key!r}: mmsam gives shape {tuple(got.shape)}, the '
                             f'official code {tuple(ref_t.shape)}')
        diffs[key] = float((ref_t - got).abs().max()) if ref_t.numel() else 0.0
    return diffs


def check_fixture(fixture_dir: str, repo_root: str, attn_impl: str = 'fused',
                  config: Optional[str] = None) -> dict:
    """Run one fixture case through mmsam and compare with the official outputs.

    Args:
        fixture_dir (str): the case's folder.
        repo_root (str): the repository (configs are read from it).
        attn_impl (str): ``'fused'`` or ``'reference'``.
        config (str, optional): another config to build the model from.

    Returns:
        dict: ``case``, ``config``, ``diffs`` (key -> float or None), ``outputs`` (mmsam's,
        by the official keys), ``notes`` (list[str]) and ``passed`` (every compared key
        within :data:`TOLERANCE` and none missing).
    """
    _import_sources()
    meta, inputs, official = load_fixture(fixture_dir)
    case = meta.get('case')
    if case not in _CASES:
        raise KeyError(f'{fixture_dir}: case {case!r} has no mmsam check (supported: '
                       f'{sorted(_CASES)})')
    runner, default_config = _CASES[case]
    config = config or osp.join(repo_root, default_config)
    cfg = Config.fromfile(config)
    with torch.no_grad(), quiet_logging():
        ours, notes = runner(fixture_dir, meta, cfg, inputs, attn_impl)
    diffs = max_abs_diffs(official, ours)
    passed = all(d is not None and d <= TOLERANCE for d in diffs.values())
    return dict(case=case, config=config, diffs=diffs, notes=notes, passed=passed,
                outputs={k: v for k, v in ours.items() if k in official})

"""Count a config's parameters, total and trainable, by module.

    python tools/analysis_tools/count_params.py configs/hsam/hsam_vit-b_synapse_10pct.py

Groups: the encoder without its adapter, the adapter (e.g. LoRA), and each direct child of the
decode head (prompt encoder, stage-1 mask decoder, stage-2 decoder, ...). A MaskSAM model
(``MaskSAMHead``) is grouped by MaskSAM's parts instead, with exact counts:
encoder adapters, depth embeddings (encoder ``depth_embed`` + decoder ``depth_pe``), decoder
adapters, prompt generator (the neck with its mask/box/cls heads), classifier (``cls_token`` +
``cls_embed``), stem, refine and SAM (encoder, prompt encoder and mask decoder). The model is
built with random weights; no checkpoint is read. ``--meta`` builds it on PyTorch's meta
device (no memory, instant; the same counts), e.g. for ViT-H. ``--exact`` prints whole numbers
for any model, to compare with an official count (SAMed: tests/test_tools/test_count_params_samed.py
checks ``configs/samed/samed_vit-b_synapse.py`` against segment-anything's own modules).
"""
import argparse
import contextlib
from collections import OrderedDict

import torch
from mmengine.config import Config, DictAction
from prettytable import PrettyTable

from mmsam.registry import MODELS
from mmsam.utils import register_all_modules


def count_by_module(model):
    """Parameters by group.

    Args:
        model (nn.Module): a segmentor with ``backbone`` and ``decode_head``.

    Returns:
        OrderedDict[str, tuple[int, int]]: group name -> (total, trainable).
    """
    adapter = {f'backbone.{n}' for n in getattr(model.backbone, 'adapter_param_names', [])}
    groups = OrderedDict()
    for name, param in model.named_parameters():
        parts = name.split('.')
        if name in adapter:
            group = 'backbone adapter'
        elif parts[0] == 'backbone':
            group = 'backbone'
        elif parts[0] == 'decode_head' and len(parts) > 2:
            group = f'decode_head.{parts[1]}'
        else:
            group = parts[0]
        total, trainable = groups.get(group, (0, 0))
        groups[group] = (total + param.numel(), trainable + param.numel() * param.requires_grad)
    return groups


MASKSAM_GROUPS = ('encoder adapters', 'depth embeddings', 'decoder adapters', 'prompt generator',
                  'classifier', 'stem', 'refine', 'SAM')
# decode-head children of MaskSAMHead -> group (prompt_encoder and mask_decoder are SAM's)
_MASKSAM_HEAD_GROUPS = dict(depth_pe='depth embeddings', decoder_adapter='decoder adapters',
                            cls_token='classifier', cls_embed='classifier', refine='refine',
                            prompt_encoder='SAM', mask_decoder='SAM')


def is_masksam(model):
    """Whether ``model`` is a MaskSAM segmentor (its decode head is a ``MaskSAMHead``)."""
    from mmsam.models.decode_heads import MaskSAMHead
    return isinstance(getattr(model, 'decode_head', None), MaskSAMHead)


def count_masksam(model):
    """Parameters of a MaskSAM model grouped by MaskSAM's parts (adapters, depth tables, ...).

    Args:
        model (nn.Module): a ``VolumeSAMSegmentor`` with a ``MaskSAMHead``.

    Returns:
        OrderedDict[str, tuple[int, int]]: group name (:data:`MASKSAM_GROUPS` order, plus
        ``'other'`` for anything else, when present) -> (total, trainable).
    """
    adapter = set(getattr(model.backbone, 'adapter_param_names', []))
    groups = OrderedDict((g, (0, 0)) for g in MASKSAM_GROUPS)
    for name, param in model.named_parameters():
        top, rest = name.split('.', 1)
        if top == 'backbone':
            group = ('depth embeddings' if rest == 'depth_embed' else
                     'encoder adapters' if rest in adapter else 'SAM')
        elif top == 'decode_head':
            group = _MASKSAM_HEAD_GROUPS.get(rest.split('.', 1)[0], 'other')
        else:
            group = dict(neck='prompt generator', stem='stem').get(top, 'other')
        total, trainable = groups.get(group, (0, 0))
        groups[group] = (total + param.numel(), trainable + param.numel() * param.requires_grad)
    return groups


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    parser.add_argument('--meta', action='store_true',
                        help='build the model on the meta device (no memory; same counts)')
    parser.add_argument('--exact', action='store_true',
                        help='print whole numbers instead of millions (MaskSAM always does)')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=True)
    with torch.device('meta') if args.meta else contextlib.nullcontext():
        model = MODELS.build(cfg.model)
    masksam = is_masksam(model)
    groups = count_masksam(model) if masksam else count_by_module(model)
    total = sum(t for t, _ in groups.values())
    trainable = sum(t for _, t in groups.values())
    if masksam or args.exact:  # whole numbers, to compare with an official count
        table = PrettyTable(['module', 'total', 'trainable'])
        for group, (group_total, group_trainable) in list(groups.items()) + [
                ('all', (total, trainable))]:
            table.add_row([group, f'{group_total:,}', f'{group_trainable:,}'])
        table.align['total'] = table.align['trainable'] = 'r'
    else:
        table = PrettyTable(['module', 'total (M)', 'trainable (M)'])
        for group, (group_total, group_trainable) in groups.items():
            table.add_row([group, f'{group_total / 1e6:.3f}', f'{group_trainable / 1e6:.3f}'])
        table.add_row(['all', f'{total / 1e6:.3f}', f'{trainable / 1e6:.3f}'])
    print(table)
    return groups


if __name__ == '__main__':
    main()

"""Count a config's parameters, total and trainable, by module.

    python tools/analysis_tools/count_params.py configs/hsam/hsam_synapse_10pct.py

Groups: the encoder without its adapter, the adapter (e.g. LoRA), and each direct child of the
decode head (prompt encoder, stage-1 mask decoder, stage-2 decoder, ...). The model is built
with random weights; no checkpoint is read.
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict

from mmengine.config import Config, DictAction
from prettytable import PrettyTable

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmsam.registry import MODELS  # noqa: E402
from mmsam.utils import register_all_modules  # noqa: E402


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    register_all_modules(init_default_scope=True)
    groups = count_by_module(MODELS.build(cfg.model))
    table = PrettyTable(['module', 'total (M)', 'trainable (M)'])
    for group, (total, trainable) in groups.items():
        table.add_row([group, f'{total / 1e6:.3f}', f'{trainable / 1e6:.3f}'])
    total = sum(t for t, _ in groups.values())
    trainable = sum(t for _, t in groups.values())
    table.add_row(['all', f'{total / 1e6:.3f}', f'{trainable / 1e6:.3f}'])
    print(table)
    return groups


if __name__ == '__main__':
    main()

"""Export a trained mmsam box-prompted SAM checkpoint in segment-anything's official key layout.

    python tools/model_converters/mmsam2sam.py CHECKPOINT OUT [--overwrite]

Keys ``backbone.*`` become ``image_encoder.*``, ``decode_head.prompt_encoder.*``
``prompt_encoder.*`` and ``decode_head.mask_decoder.*`` ``mask_decoder.*``; everything else of
the head (e.g. SeqSAM's recurrent convolutions) is left out. The output loads in
``segment_anything.sam_model_registry`` (for the official architectures) and as the
``checkpoint`` of mmsam's ``SAMImageEncoder``, ``SAMPromptEncoder`` and ``SAMMaskDecoder``, so a
model trained with mmsam can initialise another method, as MedSAM's weights initialise
SeqSAM in the SeqSAM paper. Encoders with LoRA adapters are refused (their ``lora_*`` weights
have no place in SAM's layout). The file is written to a temporary name and renamed.
"""
import argparse
import os.path as osp
import sys

import torch

from mmsam.engine import (CorruptCheckpointError, allow_mmengine_checkpoints,
                          check_checkpoint_file)
from mmsam.utils.io import atomic_torch_save

PREFIXES = {'backbone.': 'image_encoder.', 'decode_head.prompt_encoder.': 'prompt_encoder.',
            'decode_head.mask_decoder.': 'mask_decoder.'}


def to_sam_layout(state_dict, source='the checkpoint'):
    """Map an mmsam segmentor's state dict to SAM's official keys.

    Args:
        state_dict (dict[str, Tensor]): with ``backbone.*`` and ``decode_head.*`` keys.
        source (str): named in errors.

    Returns:
        dict[str, Tensor]: ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``.
    """
    adapters = [k for k in state_dict if k.startswith('backbone.') and '.lora_' in k]
    if adapters:
        raise ValueError(f'{source} has LoRA adapter weights (e.g. {adapters[0]}), which SAM\'s '
                         'layout cannot hold; export a model without adapters')
    out = {}
    for key, value in state_dict.items():
        for prefix, sam_prefix in PREFIXES.items():
            if key.startswith(prefix):
                out[sam_prefix + key[len(prefix):]] = value
    missing = [p for p in PREFIXES.values() if not any(k.startswith(p) for k in out)]
    if missing:
        raise KeyError(f'{source} has no weights for {missing} (expected keys starting with '
                       f'{[k for k, v in PREFIXES.items() if v in missing]}); is it an mmsam '
                       'SAM segmentor checkpoint?')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='mmsam checkpoint (tools/train.py output)')
    parser.add_argument('out', help='output .pth in SAM\'s layout')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        sys.exit(f'error: {args.checkpoint} does not exist')
    if osp.exists(args.out) and not args.overwrite:
        sys.exit(f'error: {args.out} exists; pass --overwrite to replace it')
    try:
        check_checkpoint_file(args.checkpoint)  # a truncated file: named, with the intact one
    except CorruptCheckpointError as err:
        sys.exit(f'error: {err}')
    with allow_mmengine_checkpoints(args.checkpoint):
        ckpt = torch.load(args.checkpoint, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        sys.exit(f'error: {args.checkpoint} holds no state dict')
    try:
        sam_state = to_sam_layout(state, args.checkpoint)
    except (KeyError, ValueError) as err:
        sys.exit(f'error: {err.args[0]}')
    atomic_torch_save(sam_state, args.out)  # temporary name, fsync, rename
    print(f'wrote {args.out}: {len(sam_state)} tensors in SAM\'s layout')


if __name__ == '__main__':
    main()

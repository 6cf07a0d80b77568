"""Recognise an official (unconverted) weight file and name the converter that takes it.

For tools that expect an mmsam checkpoint (tools/test.py, tools/infer.py, ``load_from``): a
file in an official layout should stop them with the converter to run, not with "corrupt" or a
list of unexpected keys.
"""
import os.path as osp
from typing import Optional

import torch

_CONVERTER_DIR = 'tools/model_converters'


def _keys(path):
    """The top-level keys of a weight file (safetensors: without reading the tensors)."""
    if path.endswith('.safetensors'):
        try:
            from safetensors import safe_open
        except ImportError:
            return None
        with safe_open(path, framework='pt') as f:
            return list(f.keys())
    obj = torch.load(path, map_location='cpu', weights_only=True)
    return list(obj) if isinstance(obj, dict) else None


def official_format_hint(path: str) -> Optional[str]:
    """The converter command for an official-layout file, or None for anything else.

    Args:
        path (str): a weight file or an HF ``save_pretrained`` folder.

    Returns:
        str | None: e.g. ``'an official SAMed LoRA file: convert it with
        tools/model_converters/samed2mmsam.py SAM_BASE FILE OUT'``; None for mmsam
        checkpoints and unknown files (the caller's own checks apply).
    """
    hf = f'{_CONVERTER_DIR}/hf_sam2mmsam.py'
    if osp.isdir(path):
        if osp.isfile(osp.join(path, 'config.json')):
            return (f'{path} is a HuggingFace save_pretrained folder (transformers SamModel, '
                    f'SeqSAM / SAM-MCL): convert it with {hf} {path} OUT')
        return None
    if path.endswith('.safetensors'):
        return (f'{path} is a safetensors file (HuggingFace SamModel layout): convert it with '
                f'{hf} {path} OUT')
    try:
        keys = _keys(path)
    except Exception:  # noqa: BLE001  unreadable files are the caller's to report
        return None
    if not keys:
        return None
    key_set = set(keys)
    if 'state_dict' in key_set or any(k.startswith(('backbone.', 'decode_head.')) for k in keys):
        return None  # mmsam's own checkpoint
    if 'network_weights' in key_set:
        return (f'{path} is an nnU-Net checkpoint (MaskSAM): convert it with '
                f'{_CONVERTER_DIR}/masksam2mmsam.py {path} OUT')
    if 'w_a_000' in key_set:
        if any(k.startswith(('prompt_encoder2.', 'mask_decoder2.')) for k in keys):
            return (f'{path} is an official H-SAM LoRA file: convert it with '
                    f'{_CONVERTER_DIR}/hsam2mmsam.py SAM_BASE {path} OUT')
        return (f'{path} is an official SAMed LoRA file (it holds only the LoRA, prompt '
                f'encoder and decoder weights): convert it with {_CONVERTER_DIR}/samed2mmsam.py '
                f'SAM_BASE {path} OUT, SAM_BASE being the SAM file it was trained from')
    if any(k.startswith('sam.image_encoder.') for k in keys) and any(
            k.startswith('prior_net.') for k in keys):
        return (f'{path} is an official Probabilistic SAM file: convert it with '
                f'{_CONVERTER_DIR}/psam2mmsam.py {path} OUT')
    if any(k.startswith('image_encoder.') for k in keys):
        return (f'{path} is a segment-anything-layout file (SAM, MedSAM): use it as the '
                "config's SAM checkpoint, or convert it with "
                f'{_CONVERTER_DIR}/sam2mmsam.py {path} OUT')
    return None

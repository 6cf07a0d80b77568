"""segment-anything's key layout: the widths a file implies, and its keys in mmsam's model.

Every width is read from the tensors (decoders narrower than SAM's 256 convert as they are);
only the mask decoder's number of attention heads is not stored in a SAM file (no tensor shape
depends on it) and comes from the config.
"""
import re
from typing import Dict

import torch
from torch import Tensor

from mmsam.models.backbones.sam_image_encoder import SAM_ARCHS
from mmsam.models.utils.sam_checkpoint import resize_abs_pos_embed, resize_rel_pos
from .source_keys import ConversionError

# segment-anything part -> its place in an mmsam SAM segmentor
SAM_TO_MMSAM = {
    'image_encoder.': 'backbone.',
    'prompt_encoder.': 'decode_head.prompt_encoder.',
    'mask_decoder.': 'decode_head.mask_decoder.',
}


def encoder_arch(encoder: Dict[str, Tensor], source: str) -> dict:
    """The ViT hyper-parameters an ``image_encoder`` state dict implies.

    Args:
        encoder (dict[str, Tensor]): keys without the ``image_encoder.`` prefix.
        source (str): named in errors.

    Returns:
        dict: ``embed_dim``, ``depth``, ``patch_size``, ``out_chans``, ``window_size``,
        ``global_attn_indexes``, ``num_heads`` (from the rel-pos tables' head width),
        ``grid`` (the file's token grid) and ``name`` (``'vit_b'``,
        ``'vit_l'``, ``'vit_h'`` or None for another size).
    """
    try:
        proj = encoder['patch_embed.proj.weight']
        pos = encoder['pos_embed']
        neck = encoder['neck.0.weight']
    except KeyError as err:
        raise ConversionError(f'{source}: the image encoder has no {err.args[0]!r}') from err
    blocks = sorted({int(m.group(1)) for k in encoder
                     for m in [re.match(r'blocks\.(\d+)\.', k)] if m})
    if blocks != list(range(len(blocks))) or not blocks:
        raise ConversionError(f'{source}: image-encoder blocks {blocks} are not 0..depth-1')
    grid = pos.shape[1]
    missing = [f'blocks.{i}.attn.rel_pos_h' for i in blocks
               if f'blocks.{i}.attn.rel_pos_h' not in encoder]
    if missing:
        raise ConversionError(f'{source}: the image encoder has no {missing[0]!r}')
    lengths = [encoder[f'blocks.{i}.attn.rel_pos_h'].shape[0] for i in blocks]
    global_len = 2 * grid - 1
    global_idx = [i for i, n in enumerate(lengths) if n == global_len]
    local = {n for n in lengths if n != global_len}
    if len(local) > 1:
        raise ConversionError(f'{source}: windowed blocks have rel-pos tables of lengths '
                              f'{sorted(local)}; expected one window size')
    window = (local.pop() + 1) // 2 if local else grid
    heads = proj.shape[0] // encoder['blocks.0.attn.rel_pos_h'].shape[1]
    arch = dict(embed_dim=proj.shape[0], depth=len(blocks), patch_size=proj.shape[-1],
                out_chans=neck.shape[0], window_size=window, global_attn_indexes=global_idx,
                num_heads=heads, grid=grid)
    arch['name'] = next((name for name, a in SAM_ARCHS.items()
                         if a['embed_dim'] == arch['embed_dim'] and a['depth'] == arch['depth']
                         and list(a['global_attn_indexes']) == global_idx), None)
    return arch


def decoder_arch(decoder: Dict[str, Tensor], source: str) -> dict:
    """The mask decoder's widths from a ``mask_decoder`` state dict (prefix removed).

    Returns:
        dict: ``transformer_dim``, ``num_mask_tokens``, ``transformer_depth``,
        ``transformer_mlp_dim``, ``iou_head_depth``, ``iou_head_hidden_dim``.
    """
    try:
        tokens = decoder['mask_tokens.weight']
        mlp = decoder['transformer.layers.0.mlp.lin1.weight']
        iou0 = decoder['iou_prediction_head.layers.0.weight']
    except KeyError as err:
        raise ConversionError(f'{source}: the mask decoder has no {err.args[0]!r}') from err
    depth = len({k.split('.')[2] for k in decoder if k.startswith('transformer.layers.')})
    iou_depth = len({k.split('.')[2] for k in decoder if k.startswith('iou_prediction_head.')})
    return dict(transformer_dim=tokens.shape[1], num_mask_tokens=tokens.shape[0],
                transformer_depth=depth, transformer_mlp_dim=mlp.shape[0],
                iou_head_depth=iou_depth, iou_head_hidden_dim=iou0.shape[0])


def resize_encoder_positions(encoder: Dict[str, Tensor], grid: int,
                             mode: str) -> Dict[str, Tensor]:
    """Resize the position tables of an encoder state dict to a ``grid`` x ``grid`` input.

    The absolute table is resized with ``mode`` (SAMed / H-SAM: ``'bilinear'``); the
    global blocks' relative tables (length 2 * file grid - 1) linearly to 2 * grid - 1, as the
    official loaders do; the windowed blocks' tables are kept.

    Args:
        encoder (dict[str, Tensor]): keys without prefix; not modified.
        grid (int): target token grid (img_size / patch_size).
        mode (str): ``'bilinear'`` or ``'bicubic'``.

    Returns:
        dict[str, Tensor]: a new state dict.
    """
    out = dict(encoder)
    file_grid = encoder['pos_embed'].shape[1]
    if file_grid == grid:
        return out
    out['pos_embed'] = resize_abs_pos_embed(encoder['pos_embed'], (grid, grid), mode)
    for key, value in encoder.items():
        if key.endswith(('rel_pos_h', 'rel_pos_w')) and value.shape[0] == 2 * file_grid - 1:
            out[key] = resize_rel_pos(value, 2 * grid - 1)
    return out


def check_sam_part(part_state: Dict[str, Tensor], part: str, source: str, prefix: str) -> None:
    """Check a SAM part's keys and shapes against segment-anything's module of the same widths.

    The reference module is built on the meta device from the widths the tensors imply (no
    memory is allocated), so a renamed, missing or extra key, or a tensor of another shape,
    is named.

    Args:
        part_state (dict[str, Tensor]): the part's weights, prefix removed.
        part (str): ``'image_encoder'``, ``'prompt_encoder'`` or ``'mask_decoder'``.
        source (str): the file, for messages.
        prefix (str): the keys' prefix in the file, for messages.
    """
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder,
                                           TwoWayTransformer)
    with torch.device('meta'):
        if part == 'image_encoder':
            a = encoder_arch(part_state, source)
            mlp = part_state.get('blocks.0.mlp.lin1.weight')
            ratio = mlp.shape[0] / a['embed_dim'] if mlp is not None else 4.0
            heads = a['num_heads']
            ref = ImageEncoderViT(
                img_size=a['grid'] * a['patch_size'], patch_size=a['patch_size'],
                embed_dim=a['embed_dim'], depth=a['depth'], num_heads=heads, mlp_ratio=ratio,
                out_chans=a['out_chans'], qkv_bias=True, use_rel_pos=True,
                window_size=a['window_size'], global_attn_indexes=a['global_attn_indexes'])
        elif part == 'prompt_encoder':
            try:
                dim = part_state['no_mask_embed.weight'].shape[1]
                chans = part_state['mask_downscaling.3.weight'].shape[0]
            except KeyError as err:
                raise ConversionError(f'{source} has no {prefix}{err.args[0]!r}') from err
            ref = PromptEncoder(embed_dim=dim, image_embedding_size=(1, 1),
                                input_image_size=(16, 16), mask_in_chans=chans)
        else:
            d = decoder_arch(part_state, source)
            ref = MaskDecoder(
                transformer_dim=d['transformer_dim'],
                transformer=TwoWayTransformer(depth=d['transformer_depth'],
                                              embedding_dim=d['transformer_dim'],
                                              mlp_dim=d['transformer_mlp_dim'], num_heads=1),
                num_multimask_outputs=d['num_mask_tokens'] - 1,
                iou_head_depth=d['iou_head_depth'], iou_head_hidden_dim=d['iou_head_hidden_dim'])
    expected = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    unknown = [k for k in part_state if k not in expected]
    missing = [k for k in expected if k not in part_state]
    if unknown or missing:
        raise ConversionError(
            f'{source}: the {part} keys do not match segment-anything\'s {type(ref).__name__}: '
            f'unknown {[prefix + k for k in unknown][:5]}, missing '
            f'{[prefix + k for k in missing][:5]} (renamed keys are not guessed at)')
    for key, shape in expected.items():
        if tuple(part_state[key].shape) != shape:
            if part == 'image_encoder' and key.endswith(('rel_pos_h', 'rel_pos_w')):
                continue  # resized to the input later
            raise ConversionError(f'{source}: {prefix}{key!r} has shape '
                                  f'{tuple(part_state[key].shape)}, expected {shape}')

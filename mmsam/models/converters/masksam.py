"""MaskSAM (bxie9/MaskSAM, an nnU-Net v2 fork): an nnU-Net checkpoint -> mmsam.

The official trainers save ``nnUNetTrainer.save_checkpoint``'s dict: ``network_weights`` (the
network's state dict) plus training state (``optimizer_state``, ``grad_scaler_state``,
``logging``, ``_best_ema``, ``current_epoch``, ``init_args``, ``trainer_name``,
``inference_allowed_mirroring_axes``). The network (``SAMAdapter_2024_*``) holds:

- ``sam_model.image_encoder.*``: SAM's ViT (segment-anything keys) with ``temporal_embedding``
  (1, T, E) and per block ``Space_Adapter`` / ``MLP_Adapter`` (DConv: ``D_fc1``,
  ``T_DWconv``, ``norm``, ``D_fc2``); its position tables are SAM's 1024 ones;
- ``sam_model.prompt_encoder.*``: SAM's prompt encoder + ``temporal_embedding`` (T, C, g, g);
- ``sam_model.mask_decoder.*``: SAM's decoder, per two-way layer ``Space_Queries_Adapter``,
  ``Cross_Space_Adapter1``, ``MLP_Queries_Adapter`` (DMLP: ``D_fc*``, ``T_fc*``) and
  ``Cross_Space_Adapter2`` (DConv), ``transformer.Space_Adapter`` (final token->image DMLP),
  ``classifier_token_Adapter`` and ``classifier_embed_Adapter``;
- ``first_conv`` (the 3D stem), ``image_decoder_*``, ``bbox_conv``, ``residual_classifier``
  (the prompt generator; ACDC adds ``image_decoder_{first,second}`` levels whose skip is the
  same module as the last ``image_decoder_skips`` entry), ``final_conv`` (3D refinement;
  Synapse / AMOS). ``dynamic_network_architectures`` registers every conv block's conv and
  norm a second time under ``.all_modules.{0,1}``.

In mmsam: ``backbone`` (``SAMImageEncoder`` + ``DepthBlockAdapter``), ``neck``
(``MaskSAMPromptGenerator``), ``stem`` (``VolumeStem``), ``decode_head`` (``MaskSAMHead``:
``prompt_encoder``, ``mask_decoder``, ``decoder_adapter``, ``depth_pe``, ``cls_token``,
``cls_embed``, ``refine``). The position table is cropped to the patch's top-left corner and
the global blocks' relative tables resized linearly to the patch's grid: what the official
encoder does at every forward (``pos_embed[:, :h, :w]``, ``get_rel_pos``).
"""
import math
import os
import os.path as osp
import re
from typing import Dict, List, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.config import Config
from torch import Tensor

from .official_check import build_model, register_case
from .sam_layout import check_sam_part, decoder_arch, encoder_arch
from .source_keys import ConversionError, SourceKeys, load_into_model_strictly
from mmsam.models.utils.sam_checkpoint import resize_abs_pos_embed, resize_rel_pos

MASKSAM_SYNAPSE_CONFIG = 'configs/masksam/masksam_vit-h_synapse.py'
# nnU-Net trainer name -> the paper-table config (AMOS: one per fold)
TRAINER_CONFIGS = {
    'MaskSAM_Synapse': MASKSAM_SYNAPSE_CONFIG,
    'MaskSAM_ACDC': 'configs/masksam/masksam_vit-b_acdc.py',
    'MaskSAM_AMOS': 'configs/masksam/masksam_vit-h_amos_fold{fold}.py',
}
# the checkpoint's non-weight entries and why they are not converted
TRAINING_STATE = {
    'optimizer_state': 'optimizer state (mmsam builds its optimizer from the config)',
    'grad_scaler_state': 'AMP grad-scaler state',
    'logging': "nnU-Net's training log",
    '_best_ema': "nnU-Net's EMA pseudo-Dice",
    'current_epoch': 'the epoch counter',
    'init_args': "the trainer's arguments (its fold picks the AMOS config)",
    'trainer_name': 'the trainer (it picks the config)',
    'inference_allowed_mirroring_axes': "the test-time flips (the config's test_cfg.mirror_axes "
                                        'has all three, as nnUNetv2_predict)',
}
_DCONV = {'D_fc1': 'fc1', 'D_fc2': 'fc2', 'T_DWconv': 'dwconv', 'norm': 'norm'}
_DMLP = {'D_fc1': 'fc1', 'D_fc2': 'fc2', 'T_fc1': 'depth_fc1', 'T_fc2': 'depth_fc2'}
# official decoder adapter -> (mmsam site, kind)
_DECODER_SITES = {'Space_Queries_Adapter': ('self_attn', _DMLP),
                  'Cross_Space_Adapter1': ('cross_t2i', _DMLP),
                  'MLP_Queries_Adapter': ('mlp', _DMLP),
                  'Cross_Space_Adapter2': ('cross_i2t', _DCONV)}


def read_nnunet_checkpoint(path: str) -> dict:
    """The dict an nnU-Net trainer saved, read weights-only.

    Args:
        path (str): ``checkpoint_final.pth`` / ``checkpoint_best.pth``.

    Returns:
        dict: with ``network_weights`` (dict of tensors) and the training state.
    """
    if not osp.isfile(path):
        raise ConversionError(f'{path} does not exist')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  torch raises many types for bad files
        raise ConversionError(f'cannot read {path} as a weights-only torch file: {err}') from err
    if not isinstance(obj, dict) or not isinstance(obj.get('network_weights'), dict):
        raise ConversionError(f'{path} is not an nnU-Net checkpoint (no network_weights dict); '
                              'MaskSAM trainers save checkpoint_final.pth with one')
    return obj


def _drop_all_modules(src):
    """Check and drop dynamic_network_architectures' duplicate ``.all_modules.{0,1}`` keys."""
    dupes = []
    for key in src.keys():
        m = re.match(r'(.*)\.all_modules\.([01])\.(weight|bias)$', key)
        if not m:
            continue
        twin = f'{m.group(1)}.{"conv" if m.group(2) == "0" else "norm"}.{m.group(3)}'
        if twin not in src or not torch.equal(src.state[twin], src.state[key]):
            raise ConversionError(f'{src.path}: {key!r} is not a copy of {twin!r}; '
                                  'dynamic_network_architectures registers each conv block '
                                  'twice, so the two must be equal')
        dupes.append(key)
    src.drop(dupes, "dynamic_network_architectures' second registration of each conv block's "
             'conv / norm (checked equal to .conv / .norm)')


def _take_adapter(src, prefix, names, ours, state, embed_dim, num_frames=None):
    """One official adapter (``prefix`` + D_fc1 ...) as mmsam's DConv / DMLP weights."""
    hidden = embed_dim // 4
    shapes = {'D_fc1.weight': (hidden, embed_dim), 'D_fc1.bias': (hidden,),
              'D_fc2.weight': (embed_dim, hidden), 'D_fc2.bias': (embed_dim,)}
    if 'T_DWconv' in names:
        shapes.update({'T_DWconv.weight': (hidden, 1, 3, 3, 3), 'T_DWconv.bias': (hidden,),
                       'norm.weight': (hidden,), 'norm.bias': (hidden,)})
    else:
        shapes.update({'T_fc1.weight': (4 * num_frames, num_frames),
                       'T_fc1.bias': (4 * num_frames,),
                       'T_fc2.weight': (num_frames, 4 * num_frames), 'T_fc2.bias': (num_frames,)})
    for name, shape in shapes.items():
        layer, param = name.split('.')
        state[f'{ours}.{names[layer]}.{param}'] = src.take(f'{prefix}.{name}', shape)


def _conv_block(src, prefix, ours, state, bias=True):
    """One nnU-Net conv block (``prefix.convs.0.{conv,norm}``) -> mmsam conv at ``ours[0]``,
    norm at ``ours[1]``; returns its conv weight."""
    weight = src.take(f'{prefix}.conv.weight')
    state[f'{ours[0]}.weight'] = weight
    if bias:
        state[f'{ours[0]}.bias'] = src.take(f'{prefix}.conv.bias', weight.shape[:1])
    state[f'{ours[1]}.weight'] = src.take(f'{prefix}.norm.weight', weight.shape[:1])
    state[f'{ours[1]}.bias'] = src.take(f'{prefix}.norm.bias', weight.shape[:1])
    return weight


def _sequential(src, prefix, ours, state):
    """An official nn.Sequential of conv blocks, transposed convs (each followed by a bare
    InstanceNorm and GELU) and plain convs, as mmsam's sequence of 3-layer groups.

    Returns:
        list[tuple[str, Tensor]]: ('block' | 'up' | 'conv', weight) in order.
    """
    indices = sorted({int(k[len(prefix) + 1:].split('.')[0]) for k in src.keys(prefix + '.')})
    layout, pos = [], 0
    for i in indices:
        item = f'{prefix}.{i}'
        if f'{item}.convs.0.conv.weight' in src:
            w = _conv_block(src, f'{item}.convs.0', (f'{ours}.{pos}', f'{ours}.{pos + 1}'), state)
            layout.append(('block', w))
        elif f'{item}.weight' in src:
            w = src.take(f'{item}.weight')
            up = tuple(w.shape[2:]) == (1, 2, 2)  # ConvTranspose3d: (in, out, 1, 2, 2)
            state[f'{ours}.{pos}.weight'] = w
            state[f'{ours}.{pos}.bias'] = src.take(f'{item}.bias', w.shape[1:2] if up
                                                   else w.shape[:1])
            layout.append(('up' if up else 'conv', w))
        else:
            raise ConversionError(f'{src.path}: {item}.* is neither a conv block nor a conv')
        pos += 3
    return layout


def _encoder(src, path, grid, state):
    """SAM's ViT with depth adapters; position tables cropped / resized to ``grid``."""
    pre = 'sam_model.image_encoder.'
    adapters = [k for k in src.keys(pre) if re.match(
        rf'{re.escape(pre)}blocks\.\d+\.(Space_Adapter|MLP_Adapter)\.', k)]
    sam = {k[len(pre):]: src.take(k) for k in src.keys(pre)
           if k not in adapters and k != pre + 'temporal_embedding'}
    check_sam_part(sam, 'image_encoder', path, pre)
    arch = encoder_arch(sam, path)
    embed = arch['embed_dim']
    arch['mlp_ratio'] = sam['blocks.0.mlp.lin1.weight'].shape[0] / embed
    sam['pos_embed'] = resize_abs_pos_embed(sam['pos_embed'], (grid, grid), 'top_left')
    for key, value in list(sam.items()):
        if key.endswith(('rel_pos_h', 'rel_pos_w')) and value.shape[0] == 2 * arch['grid'] - 1:
            sam[key] = resize_rel_pos(value, 2 * grid - 1)
    state.update({f'backbone.{k}': v for k, v in sam.items()})
    temporal = src.take(pre + 'temporal_embedding')
    if temporal.dim() != 3 or temporal.shape[0] != 1 or temporal.shape[2] != embed:
        raise ConversionError(f'{path}: {pre}temporal_embedding has shape '
                              f'{tuple(temporal.shape)}, expected (1, T, {embed})')
    state['backbone.depth_embed'] = temporal[:, :, None, None, :].clone()
    for i in range(arch['depth']):
        for official, ours in (('Space_Adapter', 'space_adapter'), ('MLP_Adapter', 'mlp_adapter')):
            _take_adapter(src, f'{pre}blocks.{i}.{official}', _DCONV,
                          f'backbone.blocks.{i}.{ours}', state, embed)
    return arch, temporal.shape[1]


def _head(src, path, num_frames, state):
    """SAM's prompt encoder and decoder, the decoder adapters, depth PE and classifier."""
    pre = 'sam_model.prompt_encoder.'
    depth_pe = src.take(pre + 'temporal_embedding')
    prompt = {k[len(pre):]: src.take(k) for k in src.keys(pre) if k != pre + 'temporal_embedding'}
    check_sam_part(prompt, 'prompt_encoder', path, pre)
    state.update({f'decode_head.prompt_encoder.{k}': v for k, v in prompt.items()})
    width = prompt['no_mask_embed.weight'].shape[1]
    if depth_pe.dim() != 4 or depth_pe.shape[:2] != (num_frames, width) or (
            depth_pe.shape[2] != depth_pe.shape[3]):
        raise ConversionError(f'{path}: {pre}temporal_embedding has shape '
                              f'{tuple(depth_pe.shape)}, expected ({num_frames}, {width}, g, g)')
    state['decode_head.depth_pe'] = depth_pe

    pre = 'sam_model.mask_decoder.'
    own = re.compile(rf'{re.escape(pre)}(transformer\.(layers\.\d+\.)?\w*Adapter\w*\.|'
                     r'classifier_(token|embed)_Adapter\.)')
    decoder = {k[len(pre):]: src.take(k) for k in src.keys(pre) if not own.match(k)}
    check_sam_part(decoder, 'mask_decoder', path, pre)
    state.update({f'decode_head.mask_decoder.{k}': v for k, v in decoder.items()})
    darch = decoder_arch(decoder, path)
    for i in range(darch['transformer_depth']):
        for official, (site, names) in _DECODER_SITES.items():
            _take_adapter(src, f'{pre}transformer.layers.{i}.{official}', names,
                          f'decode_head.decoder_adapter.layers.{i}.{site}', state, width,
                          num_frames)
    final = f'{pre}transformer.Space_Adapter'
    has_final = bool(src.keys(final + '.'))
    if has_final:
        _take_adapter(src, final, _DMLP, 'decode_head.decoder_adapter.final_t2i', state, width,
                      num_frames)
    state['decode_head.cls_token.weight'] = src.take(f'{pre}classifier_token_Adapter.weight',
                                                     (1, width))
    cls_w = src.take(f'{pre}classifier_embed_Adapter.weight')
    if cls_w.dim() != 2 or cls_w.shape[1] != width:
        raise ConversionError(f'{path}: {pre}classifier_embed_Adapter.weight has shape '
                              f'{tuple(cls_w.shape)}, expected (C + 1, {width})')
    state['decode_head.cls_embed.weight'] = cls_w
    state['decode_head.cls_embed.bias'] = src.take(f'{pre}classifier_embed_Adapter.bias',
                                                   cls_w.shape[:1])
    return dict(decoder=darch, width=width, grid=depth_pe.shape[-1],
                num_classes=cls_w.shape[0] - 1, final_attn=has_final,
                mask_in_chans=prompt['mask_downscaling.3.weight'].shape[0])


def _skip(src, prefix, ours, state):
    """One skip path: alternating ConvT (1,2,2) and conv blocks; returns (steps, kernel)."""
    indices = sorted({int(k[len(prefix) + 1:].split('.')[0]) for k in src.keys(prefix + '.')})
    if indices != list(range(len(indices))) or len(indices) % 2:
        raise ConversionError(f'{src.path}: {prefix} has layers {indices}; expected pairs of '
                              'a transposed conv and a conv block')
    kernel = None
    for i in range(0, len(indices), 2):
        w = src.take(f'{prefix}.{i}.weight')
        state[f'{ours}.{2 * i}.weight'] = w
        state[f'{ours}.{2 * i}.bias'] = src.take(f'{prefix}.{i}.bias', w.shape[1:2])
        conv = _conv_block(src, f'{prefix}.{i + 1}.convs.0',
                           (f'{ours}.{2 * i + 1}', f'{ours}.{2 * i + 2}'), state)
        kernel = tuple(conv.shape[2:])
    return len(indices) // 2, kernel


def _stage(src, prefix, ours, state):
    """One generator stage (``prefix.convs.j``); returns (out, in, kernel, num_convs)."""
    convs = sorted({int(m.group(1)) for k in src.keys(prefix + '.convs.')
                    for m in [re.match(rf'{re.escape(prefix)}\.convs\.(\d+)\.', k)] if m})
    first = None
    for j in convs:
        w = _conv_block(src, f'{prefix}.convs.{j}', (f'{ours}.{3 * j}', f'{ours}.{3 * j + 1}'),
                        state)
        first = w if first is None else first
    return first.shape[0], first.shape[1], tuple(first.shape[2:]), len(convs)


def _generator(src, path, state):
    """The prompt generator: stages, ups, skips, mask / box / class heads."""
    n_main = len({k.split('.')[1] for k in src.keys('image_decoder_stages.')})
    extra = [p for p in ('image_decoder_stages_second', 'image_decoder_stages_first')
             if src.keys(p + '.')]
    channels, kernels, num_convs, scales, skip_index = [], [], [], [], []
    neck_dim = None
    for lvl, prefix in enumerate([f'image_decoder_stages.{s}' for s in range(n_main)]
                                 + [f'{p}.0' for p in extra]):
        out, inp, kernel, n = _stage(src, prefix, f'neck.stages.{lvl}', state)
        channels.append(out)
        kernels.append(kernel)
        num_convs.append(n)
        if lvl == 0:
            neck_dim, scales = inp, [1]
            continue
        if lvl < n_main:
            w = src.take(f'image_decoder_transpconvs.{lvl - 1}.weight')
            state[f'neck.ups.{lvl}.weight'] = w
            state[f'neck.ups.{lvl}.bias'] = src.take(f'image_decoder_transpconvs.{lvl - 1}.bias',
                                                     w.shape[1:2])
            steps, _ = _skip(src, f'image_decoder_skips.{lvl - 1}', f'neck.skips.{lvl - 1}',
                             state)
            skip_index.append(lvl - 1)
            scales.append(2 ** steps)
        else:  # ACDC's extra levels: no upsampling, the last skip module again
            shared = f'image_decoder_skips.{n_main - 2}'
            alias = extra[lvl - n_main].replace('stages', 'skips') + '.0'
            for key in src.keys(alias + '.'):
                twin = shared + key[len(alias):]
                if twin not in src or not torch.equal(src.state[key], src.state[twin]):
                    raise ConversionError(f'{path}: {key!r} differs from {twin!r}; the official '
                                          'ACDC network shares one skip module')
            src.drop(alias + '.', f'the same module as {shared} (shared skip, checked equal)')
            scales.append(scales[-1])
    embed_in = src.state['image_decoder_skips.0.0.weight'].shape[0]
    queries_w = src.take('image_decoder_seg_layers.0.weight')
    q = queries_w.shape[0]
    state['neck.mask_head.weight'] = queries_w
    state['neck.mask_head.bias'] = src.take('image_decoder_seg_layers.0.bias', (q,))
    _conv_block(src, 'bbox_conv.convs.0', ('neck.box_head.0', 'neck.box_head.1'), state,
                bias=False)
    _conv_block(src, 'residual_classifier.convs.0', ('neck.cls_head.0', 'neck.cls_head.1'), state)
    total = sum(channels)
    for key in ('neck.box_head.0.weight', 'neck.cls_head.0.weight'):
        if tuple(state[key].shape[:2]) != (q, total):
            raise ConversionError(f'{path}: the {key.split(".")[1]} conv takes '
                                  f'{state[key].shape[1]} -> {state[key].shape[0]} channels, '
                                  f'expected {total} -> {q} (the levels\' widths {channels})')
    return dict(channels=tuple(channels), kernel_sizes=tuple(kernels),
                num_convs=tuple(num_convs), scales=tuple(scales), neck_dim=neck_dim,
                embed_dim=embed_in, num_queries=q, share_skips=bool(extra))


def convert_masksam(path: str) -> Tuple[dict, dict, List[str]]:
    """Convert an official MaskSAM nnU-Net checkpoint into an mmsam model state dict.

    Args:
        path (str): ``checkpoint_final.pth`` written by a MaskSAM trainer.

    Returns:
        tuple[dict, dict, list[str]]: the state dict, a summary (every width read from the
        file, the stem and refinement layouts, ``trainer``, ``config``) and the report lines.
    """
    ckpt = read_nnunet_checkpoint(path)
    report = []
    unknown = [k for k in ckpt if k != 'network_weights' and k not in TRAINING_STATE]
    if unknown:
        raise ConversionError(f'{path} has entries the converter does not know: {unknown}; '
                              'is it an nnU-Net checkpoint of a MaskSAM trainer?')
    for key in ckpt:
        if key != 'network_weights':
            report.append(f'dropped entry {key!r} of {osp.basename(path)} '
                          f'({TRAINING_STATE[key]})')
    src = SourceKeys(ckpt['network_weights'], path)
    if not src.keys('sam_model.image_encoder.') or not src.keys('image_decoder_stages.'):
        raise ConversionError(f'{path}: network_weights has no sam_model.image_encoder.* and '
                              'image_decoder_stages.* keys; it is not a MaskSAM network')
    _drop_all_modules(src)
    state = {}
    head = _head(src, path, src.state['sam_model.image_encoder.temporal_embedding'].shape[1],
                 state)
    enc, num_frames = _encoder(src, path, head['grid'], state)
    gen = _generator(src, path, state)
    if gen['embed_dim'] != enc['embed_dim'] or gen['neck_dim'] != head['width']:
        raise ConversionError(f'{path}: the prompt generator reads width {gen["embed_dim"]} '
                              f'blocks and a {gen["neck_dim"]} neck, the encoder has '
                              f'{enc["embed_dim"]} and {head["width"]}')
    stem_layout = _sequential(src, 'first_conv', 'stem.layers', state)
    stem = _stem_args(stem_layout, path)
    refine = None
    if src.keys('final_conv.'):
        layout = _sequential(src, 'final_conv', 'decode_head.refine.layers', state)
        ups = sum(kind == 'up' for kind, _ in layout)
        refine = dict(hidden=layout[0][1].shape[0], upsample=2 ** ups)
    report = src.finish() + report
    grid = head['grid']
    trainer = ckpt.get('trainer_name')
    fold = (ckpt.get('init_args') or {}).get('fold', 0)
    config = TRAINER_CONFIGS.get(trainer, MASKSAM_SYNAPSE_CONFIG).format(fold=fold)
    patch = grid * gen['scales'][-1]
    summary = dict(
        encoder=enc, num_frames=num_frames, img_size=grid * enc['patch_size'], grid=grid,
        canvas_size=enc['grid'] * enc['patch_size'], patch=patch, stem=stem, refine=refine,
        generator=gen, decoder=head['decoder'], prompt_width=head['width'],
        mask_in_chans=head['mask_in_chans'], num_classes=head['num_classes'],
        final_attn=head['final_attn'], trainer=trainer, fold=fold, config=config)
    if summary['img_size'] != patch * stem['upsample']:
        raise ConversionError(f'{path}: the stem upsamples x{stem["upsample"]} a {patch} patch, '
                              f'but the encoder grid {grid} means a {summary["img_size"]} input')
    return state, summary, report


def _stem_args(layout, path):
    """``VolumeStem`` arguments from the official stem's layout."""
    kinds = [k for k, _ in layout]
    n_up = kinds.count('up')
    if not re.fullmatch(r'(b)+(u)*(b)*', ''.join(k[0] for k in kinds)) or kinds[-1] != 'block':
        raise ConversionError(f'{path}: first_conv has layers {kinds}; expected conv blocks, '
                              'then transposed convs, then conv blocks')
    first_up = kinds.index('up') if n_up else len(kinds) - 1
    widths = [w.shape[1] if k == 'up' else w.shape[0] for k, w in layout]
    return dict(in_channels=layout[0][1].shape[1], channels=tuple(widths[:first_up]),
                upsample=2 ** n_up,
                up_channels=tuple(widths[first_up:first_up + n_up]) if n_up else None,
                post_channels=tuple(widths[first_up + n_up:-1]) if n_up else (),
                out_channels=widths[-1], up_norm_affine=False)


def apply_summary(model_cfg: ConfigDict, summary: dict, decoder_heads: int,
                  attn_impl: str = 'fused') -> None:
    """Set a MaskSAM config's widths to a converted file's (in place; checkpoints cleared).

    Args:
        model_cfg (ConfigDict): ``cfg.model`` of a MaskSAM config.
        summary (dict): :func:`convert_masksam`'s summary.
        decoder_heads (int): the decoder's attention heads (no tensor shape holds it).
        attn_impl (str): the encoder's attention implementation.
    """
    enc, gen, dec = summary['encoder'], summary['generator'], summary['decoder']
    t, q = summary['num_frames'], gen['num_queries']
    stem = dict(summary['stem'])
    if stem['up_channels'] is None:
        stem.pop('up_channels')
        stem.pop('up_norm_affine')
        stem.pop('post_channels')
    model_cfg.stem = dict(type='VolumeStem', **stem)
    model_cfg.backbone.update(
        arch=dict(embed_dim=enc['embed_dim'], depth=enc['depth'], num_heads=enc['num_heads'],
                  global_attn_indexes=tuple(enc['global_attn_indexes']),
                  patch_size=enc['patch_size'], window_size=enc['window_size'],
                  out_chans=enc['out_chans'], mlp_ratio=enc['mlp_ratio']),
        img_size=summary['img_size'], num_frames=t, checkpoint=None, attn_impl=attn_impl,
        out_indices=tuple(enc['global_attn_indexes'][-(len(gen['channels']) - 1):]))
    cls_pool = math.isqrt(summary['prompt_width'])
    model_cfg.neck.update(
        embed_dim=enc['embed_dim'], num_frames=t, num_queries=q,
        token_dim=summary['prompt_width'], neck_dim=gen['neck_dim'], channels=gen['channels'],
        scales=gen['scales'], kernel_sizes=gen['kernel_sizes'], num_convs=gen['num_convs'],
        cls_pool=cls_pool, share_skips=gen['share_skips'], input_size=summary['patch'])
    head = model_cfg.decode_head
    head.update(num_classes=summary['num_classes'], num_frames=t, num_queries=q,
                refine=None if summary['refine'] is None
                else dict(type='MaskRefine3D', **summary['refine']))
    head.prompt_encoder.update(embed_dim=summary['prompt_width'], img_size=summary['img_size'],
                               patch_size=enc['patch_size'],
                               mask_in_chans=summary['mask_in_chans'], checkpoint=None)
    head.mask_decoder.update(
        transformer_dim=dec['transformer_dim'], transformer_depth=dec['transformer_depth'],
        transformer_mlp_dim=dec['transformer_mlp_dim'], transformer_num_heads=decoder_heads,
        iou_head_depth=dec['iou_head_depth'], iou_head_hidden_dim=dec['iou_head_hidden_dim'],
        checkpoint=None)
    head.decoder_adapter.update(final_attn=summary['final_attn'])
    if 'loss_decode' in head and head.loss_decode.get('num_points'):
        head.loss_decode.num_points = min(head.loss_decode.num_points, 1024)
    model_cfg.test_cfg.update(patch_size=(t, summary['patch'], summary['patch']))


@register_case('masksam', MASKSAM_SYNAPSE_CONFIG)
def run_masksam_fixture(fixture_dir: str, meta: dict, cfg: Config,
                        inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The MaskSAM fixture: mmsam's outputs under the official keys.

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    from mmsam.models.utils.volume_blocks import to_volume
    files = [f for f in sorted(os.listdir(fixture_dir)) if f.endswith('.pth')]
    state, summary, report = convert_masksam(osp.join(fixture_dir, files[0]))
    model_cfg = cfg.model
    apply_summary(model_cfg, summary, meta['arch']['decoder_num_heads'], attn_impl)
    model = build_model(model_cfg)
    load_into_model_strictly(model, state, fixture_dir)
    model.eval()
    volume = inputs['preprocessed'].float()  # (B, 1, T, H, W), nnU-Net's CT normalisation
    data = model.data_preprocessor(dict(inputs=list(volume)), False) if len(volume) == 1 else \
        dict(inputs=volume)
    batch = data['inputs']
    out = model._forward(batch)
    scores = model.window_scores(batch)
    outputs = dict(pred_logits=out['cls_logits'], pred_masks=out['mask_logits'],
                   pred_aux_masks=out['aux_mask_logits'].sigmoid(),
                   pred_aux_bboxes=out['aux_boxes'], semantic_scores=scores)
    assert to_volume(out['mask_logits'], summary['num_frames']).shape[2] == batch.shape[2]
    notes = list(report) + [
        f'{summary["trainer"]}: encoder width {summary["encoder"]["embed_dim"]}, T '
        f'{summary["num_frames"]}, Q {summary["generator"]["num_queries"]}, C '
        f'{summary["num_classes"]}, {summary["patch"]}^2 patch in a {summary["canvas_size"]} '
        'canvas',
        'semantic_scores: VolumeSAMSegmentor.window_scores (the sliding window\'s per-window '
        'scores); pred_aux_masks: sigmoid of the generator\'s logits (the official output)']
    return outputs, notes

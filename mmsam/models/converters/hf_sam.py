"""HuggingFace transformers ``SamModel`` checkpoints -> mmsam (SAM, MedSAM-HF, SeqSAM, SAM MCL).

An HF checkpoint is a ``save_pretrained`` folder (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``, possibly sharded with an ``*.index.json``) or one such weight file.
``facebook/sam-vit-base`` and ``wanglab/medsam-vit-base`` hold ``SamModel`` keys
(``vision_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``, ``shared_image_embedding.*``);
the official SeqSAM code (BenjaminTowle/SeqSAM) saves its models with those keys under ``sam.``,
and ``SeqSam`` adds its recurrent module ``cell.conv_o.*`` / ``cell.conv_h.*`` (``CRnnCell``:
both convolve ``cat([Z, H])``; ``conv_o`` gives the dense prompt, ``conv_h`` the next hidden
state).

The keys are renamed to segment-anything's layout (HF splits SAM's ``nn.Sequential`` blocks
into named layers, and its 3-layer MLPs into ``proj_in`` / ``layers`` / ``proj_out``), each part
is checked against segment-anything's module of the widths the tensors imply, and the result
is placed as in an mmsam SAM segmentor (``backbone.*``, ``decode_head.prompt_encoder.*``,
``decode_head.mask_decoder.*``; the cell as ``SeqSAMHead``'s ``decode_head.conv1`` / ``conv2``).
Widths come from the tensors; the decoder's number of heads and LayerNorm eps (no tensor shape
shows them) from ``config.json``. HF's two-way blocks use LayerNorm eps 1e-6 where
segment-anything uses 1e-5: the configs that run these weights set
``mask_decoder.two_way_layer_norm_eps=1e-6``.
"""
import contextlib
import json
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from ..losses.mask_dice_loss import pairwise_costs_per_sample, soft_dice_loss
from .official_check import build_model, register_case
from .sam_layout import SAM_TO_MMSAM, check_sam_part, decoder_arch, encoder_arch
from .source_keys import (ConversionError, SourceKeys, load_into_model_strictly,
                          read_weight_file)

SEQSAM_CONFIG = 'configs/seqsam/seqsam_vit-b_lidc_m3.py'
MCL_CONFIG = 'configs/sam_mcl/sam-mcl_vit-b_lidc.py'
MEDSAM_BASELINE_CONFIG = 'configs/medsam/medsam_vit-b_lidc.py'
WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')
INDEX_FILES = ('model.safetensors.index.json', 'pytorch_model.bin.index.json')
# transformers' SamConfig defaults for the fields mmsam reads (config.json omits defaults).
HF_MASK_DECODER_DEFAULTS = dict(num_attention_heads=8, layer_norm_eps=1e-6,
                                attention_downsample_rate=2)
RECURRENT_INPUT_ORDERS = ('zh', 'hz')

# (HF name, segment-anything name) renames, applied to the key after its part prefix.
_VISION_RENAMES = [
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.layer_norm1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.layer_norm2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.', r'blocks.\1.'),
    (r'^neck\.conv1\.', 'neck.0.'),
    (r'^neck\.layer_norm1\.', 'neck.1.'),
    (r'^neck\.conv2\.', 'neck.2.'),
    (r'^neck\.layer_norm2\.', 'neck.3.'),
]
_PROMPT_RENAMES = [
    (r'^point_embed\.(\d+)\.', r'point_embeddings.\1.'),
    (r'^mask_embed\.conv1\.', 'mask_downscaling.0.'),
    (r'^mask_embed\.layer_norm1\.', 'mask_downscaling.1.'),
    (r'^mask_embed\.conv2\.', 'mask_downscaling.3.'),
    (r'^mask_embed\.layer_norm2\.', 'mask_downscaling.4.'),
    (r'^mask_embed\.conv3\.', 'mask_downscaling.6.'),
]
_DECODER_RENAMES = [
    (r'^transformer\.layers\.(\d+)\.layer_norm(\d)\.', r'transformer.layers.\1.norm\2.'),
    (r'^transformer\.layer_norm_final_attn\.', 'transformer.norm_final_attn.'),
    (r'^upscale_conv1\.', 'output_upscaling.0.'),
    (r'^upscale_layer_norm\.', 'output_upscaling.1.'),
    (r'^upscale_conv2\.', 'output_upscaling.3.'),
]


def read_hf_checkpoint(path: str) -> Tuple[Dict[str, Tensor], Optional[dict], str]:
    """The tensors and ``config.json`` (or None) of an HF folder or weight file.

    Args:
        path (str): a ``save_pretrained`` folder, or a ``.safetensors`` / ``.bin`` file (its
            folder's ``config.json`` is read when there is one).

    Returns:
        tuple[dict[str, Tensor], dict | None, str]: tensors, the parsed config and the path
        named in messages (the weight file).
    """
    if osp.isdir(path):
        folder = path
        index = next((osp.join(path, f) for f in INDEX_FILES if osp.isfile(osp.join(path, f))),
                     None)
        weights = next((osp.join(path, f) for f in WEIGHT_FILES
                        if osp.isfile(osp.join(path, f))), None)
        if weights is not None:
            state = dict(read_weight_file(weights))
        elif index is not None:
            with open(index) as f:
                shards = sorted(set(json.load(f).get('weight_map', {}).values()))
            if not shards:
                raise ConversionError(f'{index} lists no weight files (weight_map)')
            state = {}
            for shard in shards:
                state.update(read_weight_file(osp.join(path, shard)))
            weights = index
        else:
            raise ConversionError(f'{path} holds none of {WEIGHT_FILES + INDEX_FILES}: not a '
                                  'HuggingFace save_pretrained folder')
    else:
        if not path.endswith(('.safetensors', '.bin')):
            raise ConversionError(f'{path}: expected a HuggingFace folder, a .safetensors or a '
                                  '.bin file')
        folder, weights = osp.dirname(path), path
        state = dict(read_weight_file(path))
    config_path = osp.join(folder, 'config.json')
    config = None
    if osp.isfile(config_path):
        with open(config_path) as f:
            config = json.load(f)
    return state, config, weights


def _rename(key, renames):
    for pattern, repl in renames:
        new, count = re.subn(pattern, repl, key)
        if count:
            return new
    return key


def _mlp_renames(key, mlp_prefixes, depth_of):
    """HF ``SamFeedForward`` keys (proj_in, layers.i, proj_out) -> segment-anything ``MLP``."""
    for prefix in mlp_prefixes:
        match = re.match(rf'^({prefix})\.(proj_in|layers\.(\d+)|proj_out)\.(.+)$', key)
        if match:
            head, part, inner, rest = match.groups()
            if part == 'proj_in':
                index = 0
            elif part == 'proj_out':
                index = depth_of(head) - 1
            else:
                index = int(inner) + 1
            return f'{head}.layers.{index}.{rest}'
    return key


def _hf_part_to_sam(part, tensors, source):
    """One HF part (prefix removed) renamed to segment-anything's keys (prefix removed).

    Returns:
        tuple[dict, dict]: the renamed tensors and segment-anything key -> HF key.
    """
    out, names = {}, {}
    if part == 'vision_encoder':
        split = {}
        for key, value in tensors.items():
            match = re.match(r'^layers\.(\d+)\.attn\.(q|k|v)_proj\.(weight|bias)$', key)
            if match:  # a split q/k/v projection: segment-anything fuses them (q, k, v rows)
                split.setdefault((match.group(1), match.group(3)), {})[match.group(2)] = value
                continue
            names[_rename(key, _VISION_RENAMES)] = key
            out[_rename(key, _VISION_RENAMES)] = value
        for (block, kind), qkv in split.items():
            if set(qkv) != {'q', 'k', 'v'}:
                raise ConversionError(f'{source}: block {block} has split attention '
                                      f'projections {sorted(qkv)}, not all of q, k and v')
            out[f'blocks.{block}.attn.qkv.{kind}'] = torch.cat([qkv['q'], qkv['k'], qkv['v']])
            names[f'blocks.{block}.attn.qkv.{kind}'] = f'layers.{block}.attn.q_proj.{kind}'
    elif part == 'prompt_encoder':
        names = {_rename(k, _PROMPT_RENAMES): k for k in tensors}
    else:
        mlp_prefixes = (r'output_hypernetworks_mlps\.\d+', r'iou_prediction_head')

        def depth_of(head):
            return 2 + len({k.split('.')[-2] for k in tensors
                            if k.startswith(f'{head}.layers.')})
        names = {_mlp_renames(_rename(k, _DECODER_RENAMES), mlp_prefixes, depth_of): k
                 for k in tensors}
    if part != 'vision_encoder':
        out = {new: tensors[old] for new, old in names.items()}
    return out, names


def convert_hf_sam(path: str, recurrent_input_order: str = 'zh') -> Tuple[dict, dict, List[str]]:
    """Convert an HF ``SamModel`` checkpoint (with or without SeqSAM's cell) to mmsam's layout.

    Args:
        path (str): ``save_pretrained`` folder, ``.safetensors`` or ``.bin`` file.
        recurrent_input_order (str): SeqSAM only: ``'zh'`` keeps the official ``CRnnCell``
            weights as they are (``SeqSAMHead(recurrent_input_order='zh')``, the Table 1
            configs); ``'hz'`` swaps the two input halves of both convolutions for a head with
            mmsam's ``cat([H, Z])`` order (the same function).

    Returns:
        tuple[dict, dict, list[str]]: the mmsam state dict, a summary (``kind``: ``'seqsam'``,
        ``'seqsam_baseline'`` or ``'sam'``; ``encoder``, ``decoder``, ``img_size``,
        ``decoder_num_heads``, ``two_way_layer_norm_eps``, ``configs``, ``notes``) and the
        report lines (dropped keys and why).
    """
    if recurrent_input_order not in RECURRENT_INPUT_ORDERS:
        raise ConversionError(f'recurrent_input_order must be one of {RECURRENT_INPUT_ORDERS}, '
                              f'got {recurrent_input_order!r}')
    tensors, config, source = read_hf_checkpoint(path)
    src = SourceKeys(tensors, source)
    wrapped = any(k.startswith('sam.') for k in tensors)
    prefix = 'sam.' if wrapped else ''
    if not src.keys(f'{prefix}vision_encoder.'):
        sa_like = [k for k in tensors if k.startswith(('image_encoder.', 'sam.image_encoder.'))]
        hint = (' It has segment-anything keys (image_encoder.*): use it as the config\'s SAM '
                'checkpoint as it is' if sa_like else '')
        raise ConversionError(f'{source} has no {prefix}vision_encoder.* keys: not a '
                              f'HuggingFace SamModel checkpoint.{hint}')
    notes = []
    sam_parts, hf_names = {}, {}
    for hf_part, sam_part in (('vision_encoder', 'image_encoder'),
                              ('prompt_encoder', 'prompt_encoder'),
                              ('mask_decoder', 'mask_decoder')):
        hf_prefix = f'{prefix}{hf_part}.'
        part = {k[len(hf_prefix):]: src.take(k) for k in src.keys(hf_prefix)
                if not k.startswith(f'{prefix}prompt_encoder.shared_embedding.')}
        if not part:
            raise ConversionError(f'{source} has no {hf_prefix}* keys')
        sam_parts[sam_part], names = _hf_part_to_sam(hf_part, part, source)
        hf_names[sam_part] = {new: hf_prefix + old for new, old in names.items()}
    # The random Fourier features: SamModel.shared_image_embedding, shared with the prompt
    # encoder (older files also hold the prompt encoder's tied copy).
    shared = f'{prefix}shared_image_embedding.positional_embedding'
    tied = f'{prefix}prompt_encoder.shared_embedding.positional_embedding'
    if shared in src:
        gaussian = src.take(shared)
        if tied in src:
            if not torch.equal(src.state[tied], gaussian):
                raise ConversionError(f'{source}: {tied!r} differs from {shared!r}; SamModel '
                                      'ties them, so they must be equal')
            src.drop([tied], 'the prompt encoder\'s tied copy of shared_image_embedding '
                     '(checked equal)')
    else:
        gaussian = src.take(tied)
    sam_parts['prompt_encoder']['pe_layer.positional_encoding_gaussian_matrix'] = gaussian
    hf_names['prompt_encoder']['pe_layer.positional_encoding_gaussian_matrix'] = (
        shared if shared in src else tied)
    for sam_part, state in sam_parts.items():
        _check_part(state, sam_part, source, hf_names[sam_part])

    enc = encoder_arch(sam_parts['image_encoder'], source)
    dec = decoder_arch(sam_parts['mask_decoder'], source)
    width = dec['transformer_dim']
    if enc['out_chans'] != width or gaussian.shape[1] * 2 != width:
        raise ConversionError(f'{source}: widths do not agree: vision neck {enc["out_chans"]}, '
                              f'prompt encoder {gaussian.shape[1] * 2}, mask decoder {width}')
    state = {}
    for sam_prefix, ours in SAM_TO_MMSAM.items():
        state.update({ours + k: v for k, v in sam_parts[sam_prefix[:-1]].items()})

    kind = 'sam'
    if src.keys('cell.'):
        kind = 'seqsam'
        for name, ours in (('conv_o', 'conv1'), ('conv_h', 'conv2')):
            weight = src.take(f'cell.{name}.weight', (width, 2 * width, 3, 3))
            if recurrent_input_order == 'hz':
                weight = torch.cat([weight[:, width:], weight[:, :width]], dim=1)
            state[f'decode_head.{ours}.weight'] = weight
            state[f'decode_head.{ours}.bias'] = src.take(f'cell.{name}.bias', (width,))
    elif wrapped:
        kind = 'seqsam_baseline'

    decoder_cfg = dict(HF_MASK_DECODER_DEFAULTS)
    if config is None:
        notes.append(f'no config.json next to {source}: the mask decoder\'s heads '
                     f'({decoder_cfg["num_attention_heads"]}) and two-way LayerNorm eps '
                     f'({decoder_cfg["layer_norm_eps"]:g}) are transformers\' defaults')
    else:
        decoder_cfg.update({k: v for k, v in config.get('mask_decoder_config', {}).items()
                            if k in decoder_cfg})
        vision = config.get('vision_config', {})
        for field, value in (('hidden_size', enc['embed_dim']),
                             ('num_hidden_layers', enc['depth']),
                             ('global_attn_indexes', enc['global_attn_indexes'])):
            if field in vision and vision[field] != value:
                raise ConversionError(f'config.json vision_config.{field}={vision[field]!r}, '
                                      f'but the weights of {source} imply {value!r}')
    heads = int(decoder_cfg['num_attention_heads'])
    if width % heads:
        raise ConversionError(f'{source}: decoder width {width} is not divisible by its '
                              f'{heads} attention heads (config.json)')
    report = src.finish()
    summary = dict(kind=kind, encoder=enc, decoder=dec,
                   img_size=enc['grid'] * enc['patch_size'], decoder_num_heads=heads,
                   two_way_layer_norm_eps=float(decoder_cfg['layer_norm_eps']),
                   recurrent_input_order=recurrent_input_order if kind == 'seqsam' else None,
                   configs=_configs_for(kind), notes=notes, source_keys=len(tensors),
                   used_keys=len(src.used))
    return state, summary, report


def _check_part(state, part, source, hf_names):
    """:func:`check_sam_part` with the file's own (HF) key names in its message."""
    try:
        check_sam_part(state, part, source, '')
    except ConversionError as err:
        message = str(err)
        for sam_key, hf_key in hf_names.items():
            message = message.replace(repr(sam_key), repr(hf_key))
        raise ConversionError(message + ' (keys the file lacks are named as segment-anything '
                              'names them)') from None


def _configs_for(kind):
    """The paper-table configs a converted checkpoint of ``kind`` loads into."""
    if kind == 'seqsam':
        return [SEQSAM_CONFIG, 'configs/seqsam/seqsam_vit-b_lidc_m10.py',
                'configs/seqsam/seqsam_medsam-vit-b_lidc_m3.py',
                'configs/seqsam/seqsam_medsam-vit-b_lidc_m10.py']
    if kind == 'seqsam_baseline':
        return [MCL_CONFIG, MEDSAM_BASELINE_CONFIG]
    return []


# ------------------------------------------------------------------------------------------
# Fixture checks (../shared/fixtures/official/seqsam, sam_mcl)
# ------------------------------------------------------------------------------------------
def hf_widths(model_cfg: ConfigDict, arch: dict, attn_impl: str) -> None:
    """Set a box-prompted SAM config's widths to a HF-layout fixture's ``meta.json`` ``arch``.

    Only sizes change and every ``checkpoint`` is cleared (the weights come from the
    converter); the config's switches stay as the config has them, which is what the check
    tests.
    """
    img, patch = arch['img_size'], arch['patch_size']
    backbone = model_cfg.backbone
    backbone.arch = dict(embed_dim=arch['encoder_embed_dim'], depth=arch['encoder_depth'],
                         num_heads=arch['encoder_num_heads'],
                         global_attn_indexes=tuple(arch['encoder_global_attn_indexes']),
                         patch_size=patch, window_size=arch['window_size'],
                         out_chans=arch['output_channels'],
                         mlp_ratio=arch['encoder_mlp_dim'] / arch['encoder_embed_dim'])
    backbone.update(img_size=img, checkpoint=None, attn_impl=attn_impl)
    head = model_cfg.decode_head
    head.prompt_encoder.update(embed_dim=arch['prompt_embed_dim'], img_size=img,
                               patch_size=patch, mask_in_chans=arch['mask_input_channels'],
                               checkpoint=None)
    head.mask_decoder.update(
        transformer_dim=arch['decoder_hidden_size'], transformer_depth=arch['decoder_depth'],
        transformer_mlp_dim=arch['decoder_mlp_dim'],
        transformer_num_heads=arch['decoder_num_heads'],
        num_multimask_outputs=arch['num_multimask_outputs'],
        iou_head_depth=arch['iou_head_depth'], iou_head_hidden_dim=arch['iou_head_hidden_dim'],
        checkpoint=None)
    model_cfg.data_preprocessor.size = (img, img)


def _build_converted(fixture_dir, meta, cfg, attn_impl, folder):
    hf_widths(cfg.model, meta['arch'], attn_impl)
    model = build_model(cfg.model)
    order = cfg.model.decode_head.get('recurrent_input_order', 'hz')
    state, summary, report = convert_hf_sam(osp.join(fixture_dir, folder),
                                            recurrent_input_order=order)
    load_into_model_strictly(model, state, osp.join(fixture_dir, folder))
    eps = model.decode_head.mask_decoder.two_way_layer_norm_eps
    notes = report + [f'converted {folder} ({summary["kind"]}); the config\'s two-way '
                      f'LayerNorm eps {eps:g}, the file\'s config.json '
                      f'{summary["two_way_layer_norm_eps"]:g}']
    return model, notes


def _fixture_batch(model, inputs):
    """The fixture's SamProcessor output through mmsam's data preprocessor.

    ``pixel_values`` were normalised with ImageNet mean / std on [0, 1]; they are mapped back
    to 0-255 values and normalised again by the config's preprocessor (SAM's statistics). The
    box is the raw box, scaled by the samples' ``img_shape / ori_shape`` as in training.
    """
    arch_mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    arch_std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    images = [(x * arch_std + arch_mean) * 255.0 for x in inputs['pixel_values'].float()]
    raw = tuple(inputs['original_sizes'][0].tolist())
    size = tuple(images[0].shape[-2:])
    samples = []
    for box, labels in zip(inputs['raw_box'], inputs['labels']):
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=raw, pad_shape=size,
                                             prompt_box=box.tolist()))
        sample.gt_annotations = PixelData(data=labels.float())
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), False)
    return data['inputs'], data['data_samples']


# The fixtures were made with torch.set_num_threads(4) (README of the pack); the official code
# run with another count differs from its own outputs.pt by up to 3e-6.
FIXTURE_THREADS = 4


@contextlib.contextmanager
def fixture_threads(meta: dict) -> Iterator[None]:
    """Run with the thread count the fixture was made with (``meta['torch_threads']``, else 4)."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(meta.get('torch_threads', FIXTURE_THREADS)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fixture_notes():
    return ['input: the fixture\'s pixel_values (SamProcessor) mapped back to 0-255 and '
            'normalised by the config\'s data preprocessor; labels: the fixture\'s (nearest '
            'at the logit size), as gt_annotations',
            f'torch threads: {torch.get_num_threads()} while checking (the fixture was made with '
            f'{FIXTURE_THREADS}; with another count the official code itself differs from '
            'outputs.pt by up to 3e-6)']


@register_case('seqsam', SEQSAM_CONFIG)
def run_seqsam_fixture(fixture_dir: str, meta: dict, cfg: Config,
                       inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The SeqSAM fixture (``SeqSam(num_samples=3)``): mmsam's outputs by the official keys.

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    with fixture_threads(meta):
        return _seqsam_outputs(fixture_dir, meta, cfg, inputs, attn_impl)


def _seqsam_outputs(fixture_dir, meta, cfg, inputs, attn_impl):
    model, notes = _build_converted(fixture_dir, meta, cfg, attn_impl, 'seqsam_hf')
    batch, samples = _fixture_batch(model, inputs)
    head = model.decode_head
    feats = model.extract_feat(batch)
    num_readers = inputs['labels'].shape[1]
    steps = max(meta['arch']['num_samples_M'], num_readers)
    logits, ious = head.unroll(feats, samples, steps)
    out = dict(image_embeddings=feats[-1],
               hypothesis_logits=logits[:, :meta['arch']['num_samples_M']],
               iou_scores_last_step=ious[:, -1:], train_hypothesis_logits_k=logits)
    # training: max(M, K) = K steps, so strided pooling keeps all of them (chunks of one)
    out['loss_train'] = sum(head.loss_by_feat(logits, samples).values())
    loss = head.loss_decode
    targets, valid = head.annotation_targets(samples, logits.shape[-2:])
    out['loss_cost_matrix'] = pairwise_costs_per_sample(
        logits, targets, valid, loss.eps, 'HungarianDiceLoss', loss.squared_pred,
        loss.per_row)[0]
    # the official eval-mode loss multiplies by no label_mask
    ignore = loss.ignore_empty
    loss.ignore_empty = False
    try:
        out['loss_eval'] = loss(logits, targets, valid)
    finally:
        loss.ignore_empty = ignore
    notes += _fixture_notes() + [
        f'loss: {type(loss).__name__}(eps={loss.eps:g}, squared_pred={loss.squared_pred}, '
        f'per_row={loss.per_row}, empty_weighting={loss.empty_weighting!r}, '
        f'normalizer={loss.normalizer!r}, batch_reduction={loss.batch_reduction!r}); '
        'loss_eval with ignore_empty=False (the official eval mode has no label_mask)']
    return out, notes


@register_case('sam_mcl', MCL_CONFIG)
def run_sam_mcl_fixture(fixture_dir: str, meta: dict, cfg: Config,
                        inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The SAM MCL fixture (``SamBaseline(multimask_output=True)``).

    The official loss target is one reader drawn by python ``random`` inside forward; mmsam
    draws with torch's generator, so the check uses the fixture's ``loss_reader_index``.

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    with fixture_threads(meta):
        return _sam_mcl_outputs(fixture_dir, meta, cfg, inputs, attn_impl)


def _sam_mcl_outputs(fixture_dir, meta, cfg, inputs, attn_impl):
    model, notes = _build_converted(fixture_dir, meta, cfg, attn_impl, 'sam_mcl_hf')
    batch, samples = _fixture_batch(model, inputs)
    head = model.decode_head
    feats = model.extract_feat(batch)
    logits = head.forward(feats, samples)
    sparse, dense = head.box_prompt_embeddings(samples, batch.device)
    _, iou = head.mask_decoder.predict(feats[-1], head.prompt_encoder.get_dense_pe(), sparse,
                                       dense)
    official = torch.load(osp.join(fixture_dir, 'outputs.pt'), weights_only=True)
    reader = official['loss_reader_index']
    targets = torch.stack([labels[r] for labels, r in zip(inputs['labels'].float(), reader)])
    loss = head.loss_decode
    per_mask = torch.stack([soft_dice_loss(hyp, target[None].expand_as(hyp), loss.eps,
                                           loss.squared_pred, loss.per_row)
                            for hyp, target in zip(logits, targets)])
    out = dict(image_embeddings=feats[-1], mask_logits=logits, iou_scores=iou[:, 1:],
               loss=loss(logits, targets[:, None]), loss_reader_index=reader,
               loss_winner_index=per_mask.argmin(1), per_mask_loss=per_mask)
    notes += _fixture_notes() + [
        f'loss: {type(loss).__name__}(eps={loss.eps:g}, squared_pred={loss.squared_pred}, '
        f'per_row={loss.per_row}) against the fixture\'s loss_reader_index (the official draw '
        'is python random inside forward)']
    return out, notes

"""SAMed (hitachinsk/SAMed): SAM base file + LoRA file -> one mmsam checkpoint.

The LoRA file is what ``LoRA_Sam.save_lora_parameters`` writes: ``w_a_NNN`` (r, C) and
``w_b_NNN`` (C, r) for the image encoder (index 2t: block t's q, 2t + 1: its v), then every
``prompt_encoder.*`` and ``mask_decoder.*`` key of the trained model (one mask token per
class, background included). The official loader (``LoRA_Sam.load_lora_parameters``) takes the
prompt encoder and the whole mask decoder from it, and the image encoder from the SAM base,
whose position tables ``build_sam.load_from`` resizes to the training input (bilinear).
SAMed_h is the same for ViT-H. SAMed_s (``sam_lora_image_encoder_mask_decoder.py``) adds LoRA
to the decoder (``sa_*``, ``cti_*``, ``cit_*``, ``fati_*`` keys), which mmsam does not model:
such files are refused.
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from mmsam.models.utils.sam_checkpoint import POS_EMBED_RESIZE_MODES
from .official_check import build_model, register_case, sam_widths
from .sam_layout import check_sam_part, decoder_arch, encoder_arch, resize_encoder_positions
from .source_keys import (ConversionError, SourceKeys, load_into_model_strictly,
                          read_weight_file)

# The config of the paper-table row per encoder ('vit_h' has no row of its own).
SAMED_CONFIGS = {'vit_b': 'configs/samed/samed_vit-b_synapse.py'}
DECODER_LORA_PREFIXES = ('sa_a_', 'sa_b_', 'cti_a_', 'cti_b_', 'cit_a_', 'cit_b_', 'fati_')


def convert_samed(base_path: str, lora_path: str, img_size: int = 512,
                  pos_embed_resize: str = 'bilinear') -> Tuple[dict, dict, List[str]]:
    """Merge a SAM base file and a SAMed LoRA file into an mmsam ``SAMSegmentor`` state dict.

    Args:
        base_path (str): segment-anything checkpoint (``sam_vit_b_01ec64.pth``, ViT-H for
            SAMed_h).
        lora_path (str): the SAMed LoRA file (``epoch_159.pth``).
        img_size (int): the input size the model was trained at (SAMed: 512); the base's
            position tables are resized to it.
        pos_embed_resize (str): ``'bilinear'`` (the official loader) or ``'bicubic'``.

    Returns:
        tuple[dict, dict, list[str]]: the state dict (``backbone.*``,
        ``decode_head.prompt_encoder.*``, ``decode_head.mask_decoder.*``), a summary (the
        widths read from the files, ``rank``, ``num_classes``, ``config``), and report lines
        (the dropped keys and why).
    """
    if pos_embed_resize not in POS_EMBED_RESIZE_MODES:
        raise ConversionError(f'pos_embed_resize {pos_embed_resize!r} is not one of '
                              f'{POS_EMBED_RESIZE_MODES}')
    base = SourceKeys(read_weight_file(base_path), base_path)
    lora = SourceKeys(read_weight_file(lora_path), lora_path)
    decoder_lora = [k for k in lora.keys() if k.startswith(DECODER_LORA_PREFIXES)]
    if decoder_lora:
        raise ConversionError(
            f'{lora_path} has mask-decoder LoRA weights ({decoder_lora[0]!r}, ...): it is a '
            'SAMed_s file (sam_lora_image_encoder_mask_decoder.py), whose decoder adapters '
            'mmsam does not model. Only SAMed and SAMed_h (encoder LoRA) files convert')
    if not lora.keys('w_a_'):
        raise ConversionError(f'{lora_path} has no w_a_NNN keys: it is not a SAMed LoRA file '
                              '(LoRA_Sam.save_lora_parameters output)')

    encoder = base.take_prefix('image_encoder.')
    check_sam_part(encoder, 'image_encoder', base_path, 'image_encoder.')
    arch = encoder_arch(encoder, base_path)
    if img_size % arch['patch_size']:
        raise ConversionError(f'img_size {img_size} is not a multiple of the patch size '
                              f'{arch["patch_size"]} of {base_path}')
    grid = img_size // arch['patch_size']
    encoder = resize_encoder_positions(encoder, grid, pos_embed_resize)
    base.drop('prompt_encoder.', 'replaced by the LoRA file\'s prompt encoder, as '
              'LoRA_Sam.load_lora_parameters does')
    base.drop('mask_decoder.', 'replaced by the LoRA file\'s mask decoder, as '
              'LoRA_Sam.load_lora_parameters does')

    state = {f'backbone.{k}': v for k, v in encoder.items()}
    state.update(lora_weights(lora, arch, lora_path))
    prompt = lora.take_prefix('prompt_encoder.')
    decoder = lora.take_prefix('mask_decoder.')
    check_sam_part(prompt, 'prompt_encoder', lora_path, 'prompt_encoder.')
    check_sam_part(decoder, 'mask_decoder', lora_path, 'mask_decoder.')
    state.update({f'decode_head.prompt_encoder.{k}': v for k, v in prompt.items()})
    state.update({f'decode_head.mask_decoder.{k}': v for k, v in decoder.items()})
    dec = decoder_arch(decoder, lora_path)
    if prompt['no_mask_embed.weight'].shape[1] != dec['transformer_dim'] or (
            dec['transformer_dim'] != arch['out_chans']):
        raise ConversionError(
            f'widths do not agree: encoder neck {arch["out_chans"]} ({base_path}), prompt '
            f'encoder {prompt["no_mask_embed.weight"].shape[1]} and mask decoder '
            f'{dec["transformer_dim"]} ({lora_path})')
    report = base.finish() + lora.finish()
    rank = state['backbone.blocks.0.attn.qkv.lora_a.q.weight'].shape[0]
    summary = dict(encoder=arch, decoder=dec, rank=rank, img_size=img_size,
                   num_classes=dec['num_mask_tokens'], pos_embed_resize=pos_embed_resize,
                   config=SAMED_CONFIGS.get(arch['name']))
    return state, summary, report


def lora_weights(lora: SourceKeys, arch: dict, path: str) -> Dict[str, Tensor]:
    """The ``w_a_NNN`` / ``w_b_NNN`` pairs as mmsam ``LoRAQKVLinear`` weights of every block."""
    indices = sorted(int(m.group(1)) for k in lora.keys('w_a_')
                     for m in [re.fullmatch(r'w_a_(\d+)', k)] if m)
    depth, dim = arch['depth'], arch['embed_dim']
    if indices != list(range(2 * depth)):
        raise ConversionError(
            f'{path} has LoRA pairs {indices[:3]}...{indices[-1:]} ({len(indices)}); the '
            f'encoder of the base has {depth} blocks, so SAMed writes w_a_000..'
            f'w_a_{2 * depth - 1:03d} (q and v of every block). LoRA on a subset of blocks '
            '(LoRA_Sam lora_layer) is not supported')
    rank = lora.state['w_a_000'].shape[0]
    out = {}
    for block in range(depth):
        for part, index in (('q', 2 * block), ('v', 2 * block + 1)):
            prefix = f'backbone.blocks.{block}.attn.qkv'
            out[f'{prefix}.lora_a.{part}.weight'] = lora.take(f'w_a_{index:03d}', (rank, dim))
            out[f'{prefix}.lora_b.{part}.weight'] = lora.take(f'w_b_{index:03d}', (dim, rank))
    return out


@register_case('samed', SAMED_CONFIGS['vit_b'])
def run_samed_fixture(fixture_dir: str, meta: dict, cfg: Config,
                      inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The SAMed fixture: mmsam's outputs under the keys of the official ``outputs.pt``.

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    arch = meta['arch']
    model_cfg = cfg.model
    sam_widths(model_cfg, arch, attn_impl)
    model = build_model(model_cfg)
    mode = model_cfg.backbone.get('pos_embed_resize', 'bicubic')
    state, summary, report = convert_samed(osp.join(fixture_dir, 'sam_base_1024.pth'),
                                           osp.join(fixture_dir, 'samed_lora.pth'),
                                           img_size=arch['img_size'], pos_embed_resize=mode)
    load_into_model_strictly(model, state, fixture_dir)
    notes = report + [f'position tables resized {mode} (the config\'s pos_embed_resize)']

    raw = inputs['raw_image'].float()  # (B, H, W) in [0, 1]
    batch, samples = preprocessed_slices(model, raw)
    head = model.decode_head
    feats = model.extract_feat(batch)
    embedding = feats[-1]
    sparse, dense = head.prompt_free_embeddings(embedding)
    low_res, iou = head.mask_decoder.predict(embedding, head.prompt_encoder.get_dense_pe(),
                                            sparse, dense)
    out = dict(low_res_logits=head.forward(feats), iou_predictions=iou,
               masks=model.encode_decode(batch, samples))
    out['pred_labels'] = torch.stack([s.pred_sem_seg.data[0]
                                      for s in model.predict(batch, _copy(samples))])
    # The loss through mmsam's own label path: the full labels go through the data
    # preprocessor (training mode) and the head brings them to the logits' resolution by
    # its loss_label_resize ('zoom' in the paper-table config: the official dataset's
    # scipy zoom(order=0) low_res_label).
    train_batch, train_samples = preprocessed_slices(model, raw, inputs['labels'].long())
    losses = model.loss(train_batch, train_samples)
    for loss in head.loss_decode:
        out[loss.loss_name] = losses[f'decode.{loss.loss_name}'] / loss.loss_weight
    out['loss'] = sum(losses[f'decode.{loss.loss_name}'] for loss in head.loss_decode)
    low_labels = inputs['low_res_labels'].long()
    resized = head.resize_labels(train_samples, low_labels.shape[-2:])
    differ = int((resized != low_labels).sum())
    notes.append(f'loss on the full labels, resized by the head\'s loss_label_resize='
                 f'{head.loss_label_resize!r}: {differ} of {low_labels.numel()} low-res labels '
                 'differ from the official low_res_labels')
    return out, notes


def preprocessed_slices(model: nn.Module, raw: Tensor, labels: Optional[Tensor] = None
                        ) -> Tuple[Tensor, List[SegDataSample]]:
    """[0, 1] slices (B, H, W) as LoadNpzSlice gives them (times 255, 3 channels) through the
    model's data preprocessor: in test mode, or with their (B, H, W) ``labels`` in training
    mode. Returns ((B, 3, S, S) batch, data samples)."""
    images = [(x * 255.0)[None].repeat(3, 1, 1) for x in raw]
    gts = [None] * len(images) if labels is None else list(labels)
    samples = [slice_sample(tuple(x.shape[-2:]), gt) for x, gt in zip(raw, gts)]
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples),
                                   labels is not None)
    return data['inputs'], data['data_samples']


def slice_sample(shape: Tuple[int, int], label: Optional[Tensor] = None) -> SegDataSample:
    """A data sample of one (H, W) slice fed whole (no padding), with an optional label."""
    sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
    if label is not None:
        sample.gt_sem_seg = PixelData(data=label[None])
    return sample


def _copy(samples):
    return [s.clone() for s in samples]

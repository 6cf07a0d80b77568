"""H-SAM (Cccccczh404/H-SAM): SAM base file + H-SAM LoRA file -> one mmsam checkpoint.

The LoRA file is what H-SAM's ``LoRA_Sam.save_lora_parameters`` writes (``220_epoch_299.pth``
for 10% Synapse): ``w_a_NNN`` / ``w_b_NNN`` (rank 5 by default; index 2t is block t's q,
2t + 1 its v, as SAMed), then every key of the trained model containing ``prompt_encoder``
or ``mask_decoder``:

- ``prompt_encoder.*``: SAM's prompt encoder with 11 point embeddings;
- ``prompt_encoder2.*``: the same module under a second name (``Sam.prompt_encoder2 =
  prompt_encoder``), checked equal and dropped;
- ``mask_decoder.*``: stage 1, SAM's decoder layout (``MaskDecoder_224`` / ``_512``);
- ``mask_decoder2.*``: stage 2 (``MaskDecoder2_224`` / ``_512``): ``transformer2.*``,
  ``mask_tokens``, ``output_upscaling``, ``skip_connect``, ``output_hypernetworks_mlps2.*``,
  ``iou_prediction_head``, and the CMAttn parts ``self_attn``, ``norm1``, ``self_attn2``,
  ``norm2``, ``mlp``, ``med_sel`` (token width 196 in the 224 build, 1024 in the 512 build).

The image encoder comes from the SAM base, whose position tables ``build_sam.load_from``
resizes to the training input (bilinear). Every width is read from the files.
"""
import os.path as osp
from typing import Dict, List, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.config import Config
from torch import Tensor

from mmsam.models.utils.sam_checkpoint import POS_EMBED_RESIZE_MODES
from .official_check import build_model, register_case, sam_widths
from .sam_layout import check_sam_part, decoder_arch, encoder_arch, resize_encoder_positions
from .samed import lora_weights, preprocessed_slices
from .source_keys import ConversionError, SourceKeys, load_into_model_strictly, read_weight_file

# paper-table config per (encoder, input size)
HSAM_CONFIGS = {('vit_b', 512): 'configs/hsam/hsam_vit-b_synapse_10pct.py',
                ('vit_l', 224): 'configs/hsam/hsam_vit-l_synapse_full.py'}
CMATTN_PARTS = ('self_attn.', 'norm1.', 'self_attn2.', 'norm2.', 'mlp.', 'med_sel.')
# official CMAttn heads per token width (MaskDecoder2_224: 7 at 196; _512: 8 at 1024)
CMATTN_HEADS = {196: 7, 1024: 8}
# official stage-2 key -> mmsam's (decode_head.stage2_decoder.* / decode_head.cmattn.*)
STAGE2_RENAMES = (('transformer2.', 'transformer.'),
                  ('output_hypernetworks_mlps2.', 'output_hypernetworks_mlps.'))


def convert_hsam(base_path: str, lora_path: str, img_size: int = 512,
                 pos_embed_resize: str = 'bilinear') -> Tuple[dict, dict, List[str]]:
    """Merge a SAM base file and an H-SAM LoRA file into an mmsam ``SAMSegmentor`` state dict.

    Args:
        base_path (str): the segment-anything checkpoint trained from (``sam_vit_b_01ec64.pth``;
            ViT-L for the 224 full-Synapse models).
        lora_path (str): the H-SAM LoRA file.
        img_size (int): the training input (512 or 224); the base's position tables are
            resized to it.
        pos_embed_resize (str): ``'bilinear'`` (official) or ``'bicubic'``.

    Returns:
        tuple[dict, dict, list[str]]: the state dict, a summary (widths read from the files,
        ``rank``, ``num_classes``, ``cmattn_width``, ``config``) and report lines (every
        dropped key and why).
    """
    if pos_embed_resize not in POS_EMBED_RESIZE_MODES:
        raise ConversionError(f'pos_embed_resize {pos_embed_resize!r} is not one of '
                              f'{POS_EMBED_RESIZE_MODES}')
    base = SourceKeys(read_weight_file(base_path), base_path)
    lora = SourceKeys(read_weight_file(lora_path), lora_path)
    if not lora.keys('w_a_') or not lora.keys('mask_decoder2.'):
        raise ConversionError(
            f'{lora_path} has no w_a_NNN or mask_decoder2.* keys: it is not an H-SAM LoRA file '
            '(LoRA_Sam.save_lora_parameters of H-SAM). A SAMed file converts with '
            'tools/model_converters/samed2mmsam.py')

    encoder = base.take_prefix('image_encoder.')
    check_sam_part(encoder, 'image_encoder', base_path, 'image_encoder.')
    arch = encoder_arch(encoder, base_path)
    if img_size % arch['patch_size']:
        raise ConversionError(f'img_size {img_size} is not a multiple of the patch size '
                              f'{arch["patch_size"]} of {base_path}')
    grid = img_size // arch['patch_size']
    encoder = resize_encoder_positions(encoder, grid, pos_embed_resize)
    for part in ('prompt_encoder.', 'mask_decoder.'):
        base.drop(part, 'replaced by the LoRA file\'s, as LoRA_Sam.load_lora_parameters does')

    state = {f'backbone.{k}': v for k, v in encoder.items()}
    state.update(lora_weights(lora, arch, lora_path))
    prompt, points = _prompt_encoder(lora, lora_path)
    state.update({f'decode_head.prompt_encoder.{k}': v for k, v in prompt.items()})
    decoder = {k[len('mask_decoder.'):]: lora.take(k) for k in lora.keys('mask_decoder.')}
    check_sam_part(decoder, 'mask_decoder', lora_path, 'mask_decoder.')
    state.update({f'decode_head.mask_decoder.{k}': v for k, v in decoder.items()})
    dec = decoder_arch(decoder, lora_path)
    width = dec['transformer_dim']
    if prompt['no_mask_embed.weight'].shape[1] != width or width != arch['out_chans']:
        raise ConversionError(
            f'widths do not agree: encoder neck {arch["out_chans"]} ({base_path}), prompt '
            f'encoder {prompt["no_mask_embed.weight"].shape[1]} and mask decoder {width} '
            f'({lora_path})')
    stage2, s2 = _stage2(lora, lora_path, dec, grid)
    state.update(stage2)
    report = base.finish() + lora.finish()
    rank = state['backbone.blocks.0.attn.qkv.lora_a.q.weight'].shape[0]
    summary = dict(encoder=arch, decoder=dec, stage2=s2, rank=rank, img_size=img_size,
                   num_classes=dec['num_mask_tokens'], num_point_embeddings=points,
                   pos_embed_resize=pos_embed_resize,
                   config=HSAM_CONFIGS.get((arch['name'], img_size)))
    return state, summary, report


def _prompt_encoder(lora, path):
    """``prompt_encoder.*`` (any number of point embeddings), ``prompt_encoder2.*`` checked
    to be the same tensors and dropped."""
    prompt = {k[len('prompt_encoder.'):]: lora.take(k) for k in lora.keys('prompt_encoder.')}
    if not prompt:
        raise ConversionError(f'{path} has no prompt_encoder.* keys')
    points = sorted(int(k.split('.')[1]) for k in prompt
                    if k.startswith('point_embeddings.') and k.endswith('.weight'))
    if points != list(range(len(points))) or len(points) < 4:
        raise ConversionError(f'{path}: prompt_encoder.point_embeddings {points} are not 0..n-1 '
                              '(n >= 4)')
    # segment-anything's layout for its 4 point embeddings; the extra ones are checked here
    sam_part = {k: v for k, v in prompt.items()
                if not (k.startswith('point_embeddings.') and int(k.split('.')[1]) >= 4)}
    check_sam_part(sam_part, 'prompt_encoder', path, 'prompt_encoder.')
    dim = prompt['no_mask_embed.weight'].shape[1]
    for i in points[4:]:
        key = f'point_embeddings.{i}.weight'
        if tuple(prompt[key].shape) != (1, dim):
            raise ConversionError(f'{path}: prompt_encoder.{key!r} has shape '
                                  f'{tuple(prompt[key].shape)}, expected {(1, dim)}')
    aliases = lora.keys('prompt_encoder2.')
    if aliases:
        names = {k[len('prompt_encoder2.'):] for k in aliases}
        if names != set(prompt):
            odd = sorted(names ^ set(prompt))
            raise ConversionError(f'{path}: prompt_encoder2.* and prompt_encoder.* have '
                                  f'different keys ({odd[:3]}); the official prompt_encoder2 '
                                  'is the same module under a second name')
        for key in aliases:
            if not torch.equal(lora.state[key], prompt[key[len('prompt_encoder2.'):]]):
                raise ConversionError(
                    f'{path}: {key!r} differs from prompt_encoder.{key[len("prompt_encoder2."):]}'
                    '; in the official model prompt_encoder2 is the same module as '
                    'prompt_encoder, so a file where they differ was not written by it')
        lora.drop(aliases, 'prompt_encoder2 is the same module as prompt_encoder in the '
                  'official Sam (equal tensors, checked)')
    return prompt, len(points)


def _stage2(lora, path, dec, grid):
    """``mask_decoder2.*`` -> ``decode_head.stage2_decoder.*`` and ``decode_head.cmattn.*``,
    checked key by key against mmsam's modules of the widths the file implies."""
    from mmsam.models.utils import HSAMClassMapAttention, HSAMStage2Decoder
    part = {k[len('mask_decoder2.'):]: lora.take(k) for k in lora.keys('mask_decoder2.')}

    def need(key):
        if key not in part:
            raise ConversionError(f'{path} has no {"mask_decoder2." + key!r}, which an H-SAM '
                                  'stage-2 decoder has (renamed keys are not guessed at)')
        return part[key]

    width = need('mask_tokens.weight').shape[1]
    num_tokens = need('mask_tokens.weight').shape[0]
    if width != dec['transformer_dim'] or num_tokens != dec['num_mask_tokens']:
        raise ConversionError(f'{path}: mask_decoder2 has {num_tokens} tokens of width {width}, '
                              f'mask_decoder {dec["num_mask_tokens"]} of '
                              f'{dec["transformer_dim"]}')
    depth = len({k.split('.')[2] for k in part if k.startswith('transformer2.layers.')})
    hyper_depth = len({k.split('.')[3] for k in part
                       if k.startswith('output_hypernetworks_mlps2.0.layers.')})
    iou_depth = len({k.split('.')[2] for k in part if k.startswith('iou_prediction_head.')})
    norms = tuple(part[f'transformer2.layers.0.cross_attn_token_to_image.norm{i}.weight'].shape[0]
                  for i in (1, 2, 3)
                  if f'transformer2.layers.0.cross_attn_token_to_image.norm{i}.weight' in part)
    s2 = dict(transformer_dim=width, transformer_depth=depth,
              transformer_mlp_dim=need('transformer2.layers.0.mlp.lin1.weight').shape[0],
              iou_head_depth=iou_depth,
              iou_head_hidden_dim=need('iou_prediction_head.layers.0.weight').shape[0],
              hypernetwork_depth=hyper_depth,
              masked_attention_downsample_rate=width // need(
                  'transformer2.layers.0.cross_attn_token_to_image.q_proj.weight').shape[0],
              unused_norm_widths=norms, skip_connection='skip_connect.0.weight' in part)
    cm_width = need('self_attn.q_proj.weight').shape[0]
    if cm_width != grid * grid:
        raise ConversionError(
            f'{path}: the stage-2 CMAttn is {cm_width} wide (one entry per embedding '
            f'position), the input asks for {grid} x {grid} = {grid * grid}: give the input size '
            f'the model was trained at (--img-size; 224 -> 196, 512 -> 1024)')
    cm = dict(num_positions=cm_width, num_heads=CMATTN_HEADS.get(cm_width, 1),
              mlp_dim=need('mlp.lin1.weight').shape[0])
    with torch.device('meta'):
        ref_dec = HSAMStage2Decoder(num_mask_tokens=num_tokens, transformer_num_heads=1, **s2)
        ref_cm = HSAMClassMapAttention(num_tokens, **cm)
    expected = {}
    for key, value in ref_dec.state_dict().items():
        official = key
        for theirs, ours in STAGE2_RENAMES:
            if key.startswith(ours):
                official = theirs + key[len(ours):]
        expected[official] = (f'decode_head.stage2_decoder.{key}', tuple(value.shape))
    for key, value in ref_cm.state_dict().items():
        expected[key] = (f'decode_head.cmattn.{key}', tuple(value.shape))
    unknown = [k for k in part if k not in expected]
    missing = [k for k in expected if k not in part]
    if unknown or missing:
        raise ConversionError(
            f'{path}: the mask_decoder2 keys do not match H-SAM\'s stage-2 decoder: unknown '
            f'{["mask_decoder2." + k for k in unknown][:5]}, missing '
            f'{["mask_decoder2." + k for k in missing][:5]} (renamed keys are not guessed at)')
    out = {}
    for key, (ours, shape) in expected.items():
        if tuple(part[key].shape) != shape:
            raise ConversionError(f'{path}: {"mask_decoder2." + key!r} has shape '
                                  f'{tuple(part[key].shape)}, expected {shape}')
        out[ours] = part[key]
    s2.update(cmattn_width=cm_width, cmattn_heads=cm['num_heads'], cmattn_mlp_dim=cm['mlp_dim'])
    return out, s2


def stage2_widths(model_cfg: ConfigDict, arch: dict) -> None:
    """Set an H-SAM config's stage-2 and CMAttn widths to ``meta.json``'s ``arch``."""
    head = model_cfg.decode_head
    head.stage2_decoder.update(
        transformer_dim=arch['prompt_embed_dim'],
        transformer_depth=arch['decoder_transformer_depth'],
        transformer_mlp_dim=arch['decoder_transformer_mlp_dim'],
        transformer_num_heads=arch['decoder_num_heads'],
        iou_head_depth=arch['iou_head_depth'], iou_head_hidden_dim=arch['iou_head_hidden_dim'])
    head.update(attention_heads=arch['stage2_token_attention_heads'],
                cmattn_mlp_dim=arch['stage2_token_mlp_dim'], num_classes=arch['num_mask_tokens'])
    model_cfg.backbone.adapter.rank = arch['lora_rank']


def _stage1_weight_at_epoch0(cfg):
    """The stage-1 loss weight the config's StageLossWeightHook sets at epoch 0."""
    from mmsam.engine.schedulers import stage_loss_weight
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'StageLossWeightHook':
            args = {k: v for k, v in hook.items() if k in ('start', 'decay')}
            return stage_loss_weight(0, **args)
    raise ValueError('the config has no StageLossWeightHook; the official loss weights the '
                     'stages 1 - 0.6 ** (0.99 ** epoch) and 0.6 ** (0.99 ** epoch)')


@register_case('hsam', HSAM_CONFIGS[('vit_b', 512)])
def run_hsam_fixture(fixture_dir: str, meta: dict, cfg: Config,
                     inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The H-SAM fixture: mmsam's outputs under the keys of the official ``outputs.pt``.

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    arch = meta['arch']
    model_cfg = cfg.model
    sam_widths(model_cfg, arch, attn_impl)
    stage2_widths(model_cfg, arch)
    model = build_model(model_cfg)
    mode = model_cfg.backbone.get('pos_embed_resize', 'bicubic')
    state, summary, report = convert_hsam(osp.join(fixture_dir, 'sam_base_1024.pth'),
                                          osp.join(fixture_dir, 'hsam_lora.pth'),
                                          img_size=arch['img_size'], pos_embed_resize=mode)
    load_into_model_strictly(model, state, fixture_dir)
    notes = report + [f'position tables resized {mode} (the config\'s pos_embed_resize)']

    raw = inputs['raw_image'].float()  # (B, H, W) in [0, 1]
    batch, samples = preprocessed_slices(model, raw)
    head = model.decode_head
    feats = model.extract_feat(batch)
    logits1, logits2 = head.forward(feats)
    size = batch.shape[-2:]
    out = dict(stage1_low_res_logits=logits1, stage2_low_res_logits=logits2,
               stage1_masks=torch.nn.functional.interpolate(logits1, size=size, mode='bilinear',
                                                            align_corners=False),
               fused_masks=head.fuse_stages(logits1, logits2))
    out['fused_pred_labels'] = torch.stack(
        [s.pred_sem_seg.data[0] for s in model.predict(batch, [s.clone() for s in samples])])
    # The loss through mmsam's own label path: the full labels go through the data
    # preprocessor (training mode) and the head brings them to stage 1's resolution by its
    # loss_label_resize ('zoom' in the paper-table config: the official dataset's scipy
    # zoom(order=0) low_res_label); the model stays in eval mode, as the fixture's loss.
    head.stage1_weight = _stage1_weight_at_epoch0(cfg)
    train_batch, train_samples = preprocessed_slices(model, raw, inputs['labels'].long())
    labels = head._stack_batch_gt(train_samples)[:, 0]
    logits1, logits2 = head.forward(model.extract_feat(train_batch), labels=labels)
    (stage1, low_labels), (stage2, _) = head.stage_losses(logits1, logits2, labels)
    losses = model.loss(train_batch, train_samples)
    out.update(loss_stage1=sum(stage1.values()), loss_stage2=sum(stage2.values()),
               loss=sum(losses[f'decode.{loss.loss_name}'] for loss in head.loss_decode),
               stage1_weight_epoch0=losses['decode.stage1_weight'])
    differ = int((low_labels != inputs['low_res_labels'].long()).sum())
    notes.append(f'loss on the full labels, resized by the head\'s loss_label_resize='
                 f'{head.loss_label_resize!r}: {differ} of {low_labels.numel()} low-res labels '
                 'differ from the official low_res_labels')
    return out, notes

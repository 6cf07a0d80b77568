"""MedSAM (bowang-lab/MedSAM): ``medsam_vit_b.pth`` has segment-anything's layout. It loads as
the ``checkpoint`` of mmsam's SAM parts without conversion; :func:`convert_sam_layout` makes an
mmsam checkpoint of it (or of any SAM-layout file) for tools/test.py and ``load_from``.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample
from torch import Tensor

from .official_check import build_model, register_case, sam_widths
from .sam_layout import (SAM_TO_MMSAM, check_sam_part, decoder_arch, encoder_arch,
                         resize_encoder_positions)
from .source_keys import ConversionError, SourceKeys, read_weight_file

MEDSAM_INFERENCE_CONFIG = 'configs/medsam/medsam_vit-b_lidc_official-inference.py'


@register_case('medsam', MEDSAM_INFERENCE_CONFIG)
def run_medsam_fixture(fixture_dir: str, meta: dict, cfg: Config,
                       inputs: Dict[str, Tensor], attn_impl: str) -> Tuple[dict, List[str]]:
    """The MedSAM fixture (``MedSAM_Inference.py``): mmsam's outputs by the official keys.

    The file is loaded the way a user loads ``medsam_vit_b.pth``: as the ``checkpoint`` of
    the encoder, prompt encoder and mask decoder (each part fails on a missing or unexpected
    key).

    Returns:
        tuple[dict, list[str]]: outputs and notes.
    """
    arch = meta['arch']
    model_cfg = cfg.model
    sam_widths(model_cfg, arch, attn_impl)
    files = [f for f in sorted(os.listdir(fixture_dir)) if f.endswith('.pth')]
    if len(files) != 1:
        raise FileNotFoundError(f'{fixture_dir}: expected one MedSAM .pth, found {files}')
    path = osp.join(fixture_dir, files[0])
    head = model_cfg.decode_head
    for part in (model_cfg.backbone, head.prompt_encoder, head.mask_decoder):
        part.checkpoint = path
    model = build_model(model_cfg)
    model.init_weights()
    model.eval()
    notes = [f'{files[0]} loaded as the checkpoint of the three SAM parts (no conversion)']

    image = inputs['preprocessed_image'].float()  # (1, 3, S, S): MedSAM's [0, 1] image
    raw_h, raw_w = inputs['raw_image'].shape[:2]
    samples = [SegDataSample(metainfo=dict(
        img_shape=tuple(image.shape[-2:]), ori_shape=(raw_h, raw_w),
        pad_shape=tuple(image.shape[-2:]), prompt_box=inputs['raw_box'].tolist()))]
    data = model.data_preprocessor(dict(inputs=[x * 255.0 for x in image], data_samples=samples),
                                   False)
    batch, samples = data['inputs'], data['data_samples']
    feats = model.extract_feat(batch)
    head = model.decode_head
    sparse, dense = head.box_prompt_embeddings(samples, batch.device)
    _, iou = head.mask_decoder.predict(feats[-1], head.prompt_encoder.get_dense_pe(), sparse,
                                       dense)
    out = dict(image_embedding=feats[-1], low_res_logits=head.forward(feats, samples),
               iou_predictions=iou[:, :1])
    pred = model.predict(batch, [s.clone() for s in samples])[0]
    out['seg_original_size'] = pred.pred_hypotheses.data[0].to(torch.uint8)
    notes.append(f"seg_original_size: the config's test_cfg.output_resize="
                 f"{model.test_cfg.get('output_resize', 'logits')!r}")
    notes.append('input: the fixture\'s preprocessed_image (MedSAM\'s skimage resize and '
                 'min-max), times 255 into the config\'s data preprocessor')
    return out, notes


def convert_sam_layout(path: str, img_size: Optional[int] = None,
                       pos_embed_resize: str = 'bicubic') -> Tuple[dict, dict, List[str]]:
    """A segment-anything-layout file (SAM, MedSAM) -> an mmsam SAM segmentor state dict.

    Args:
        path (str): ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*`` weights.
        img_size (int, optional): resize the position tables to this input (None: keep).
        pos_embed_resize (str): ``'bicubic'`` or ``'bilinear'``.

    Returns:
        tuple[dict, dict, list[str]]: state dict, summary (widths, ``img_size``) and report.
    """
    src = SourceKeys(read_weight_file(path), path)
    state, parts = {}, {}
    for sam_prefix, ours in SAM_TO_MMSAM.items():
        parts[sam_prefix] = src.take_prefix(sam_prefix)
        check_sam_part(parts[sam_prefix], sam_prefix[:-1], path, sam_prefix)
    enc = encoder_arch(parts['image_encoder.'], path)
    size = img_size or enc['grid'] * enc['patch_size']
    if size % enc['patch_size']:
        raise ConversionError(f'img_size {size} is not a multiple of the patch size '
                              f'{enc["patch_size"]} of {path}')
    parts['image_encoder.'] = resize_encoder_positions(
        parts['image_encoder.'], size // enc['patch_size'], pos_embed_resize)
    for sam_prefix, ours in SAM_TO_MMSAM.items():
        state.update({ours + k: v for k, v in parts[sam_prefix].items()})
    report = src.finish()
    summary = dict(encoder=enc, decoder=decoder_arch(parts['mask_decoder.'], path),
                   img_size=size)
    return state, summary, report

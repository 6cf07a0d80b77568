"""Exporting a trained 2D mmsam model to ONNX: the image encoder and the decode head.

Two graphs, both with a dynamic batch axis:

* ``encoder.onnx``: ``image`` (B, 3, S, S), the data preprocessor's output (normalised, at the
  model's input size) -> ``feat0`` ... ``featN`` (the encoder features, neck applied, the image
  embedding last). LoRA updates are merged into the qkv weights first (``W + s * B @ A`` per
  adapted part), so the graph is a plain ViT; other adapters (bottleneck, DConv, DMLP) hold
  non-linearities and are exported as they are.
* ``head.onnx``: the features (prompt-free heads: SAMed, H-SAM) -> ``logits`` (B, C, S, S),
  what ``SAMSegmentor.encode_decode`` gives; box-prompted heads (MedSAM, SAM-MCL, SeqSAM) also
  take ``boxes`` (B, 4) (x0, y0, x1, y1 in pixels of the network input) and give the
  hypothesis logits (B, M, S, S), what ``MultiHypothesisSegmentor.predict_hypotheses`` gives.
  M is fixed at export (``test_cfg.num_hypotheses`` or the head's default): SeqSAM's recurrent
  loop is unrolled M times by the exporter.

``deploy.json`` records what the runner (:mod:`mmsam.apis.onnx_runner`) needs besides the
config (``config.py``, the resolved config): input size, kind, M, classes.
"""
import copy
import json
import os.path as osp
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from mmsam.models.adapters.lora import LoRAQKVLinear
from mmsam.utils.io import staged_files
from .inference import is_hypothesis_model, is_volume_model, model_input_size

ENCODER_FILE, HEAD_FILE, DEPLOY_FILE, CONFIG_FILE = ('encoder.onnx', 'head.onnx', 'deploy.json',
                                                     'config.py')


def merge_lora(model: nn.Module) -> int:
    """Replace every :class:`LoRAQKVLinear` of ``model`` by an ``nn.Linear`` with the update
    merged into its weight (in place).

    Returns:
        int: the number of projections merged.
    """
    merged = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, LoRAQKVLinear):
                continue
            linear = child.merged_linear()
            setattr(parent, name, linear)
            merged += 1
    return merged


def use_reference_attention(model: nn.Module) -> int:
    """Switch the encoder's fused attention (``FusedRelPosAttention``, ``attn_impl='fused'``)
    to segment-anything's reference ``Attention``, in place; the weights are the same modules.

    Returns:
        int: attention modules switched.
    """
    from segment_anything.modeling.image_encoder import Attention

    from mmsam.models.backbones.fused_rel_pos_attention import FusedRelPosAttention
    switched = 0
    for module in model.modules():
        if isinstance(module, FusedRelPosAttention):
            module.__class__ = Attention  # a subclass holding exactly Attention's attributes
            switched += 1
        if getattr(module, 'attn_impl', None) == 'fused':
            module.attn_impl = 'reference'
    return switched


def _samples(size, count=1):
    samples = []
    for _ in range(count):
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=size, ori_shape=size, pad_shape=size,
                                 batch_input_shape=size))
        samples.append(sample)
    return samples


class EncoderForExport(nn.Module):
    """``image`` (B, 3, S, S) -> the segmentor's features (tuple, image embedding last)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.model.extract_feat(image))


class HeadForExport(nn.Module):
    """Features (and boxes) -> logits at the network input size.

    Prompt-free: ``forward(*feats)`` -> (B, C, S, S). Box-prompted: ``forward(*feats, boxes)``
    with ``boxes`` (B, 4) in pixels of the network input -> (B, M, S, S) hypothesis logits.
    """

    def __init__(self, model: nn.Module, size: Tuple[int, int],
                 num_hypotheses: Optional[int] = None) -> None:
        super().__init__()
        self.model, self.size = model, tuple(size)
        self.boxed = is_hypothesis_model(model)
        self.num_hypotheses = num_hypotheses

    def _resize(self, logits):
        if tuple(logits.shape[-2:]) != self.size:
            logits = nn.functional.interpolate(logits, size=self.size, mode='bilinear',
                                               align_corners=self.model.align_corners)
        return logits

    def forward(self, *args: Tensor) -> Tensor:
        head = self.model.decode_head
        if not self.boxed:
            return self._resize(head.predict(tuple(args), _samples(self.size),
                                             self.model.test_cfg))
        *feats, boxes = args
        # the head reads the boxes from the samples; here they are the graph's input
        head.prompt_boxes = lambda samples, device: boxes
        try:
            logits = head.predict_hypotheses(tuple(feats), _samples(self.size),
                                             self.num_hypotheses)
        finally:
            del head.prompt_boxes
        return self._resize(logits)


def _export(module, args, path, input_names, output_names):
    batch = torch.export.Dim('batch', min=1, max=1024)
    dynamic = tuple({0: batch} for _ in args)
    if isinstance(module, HeadForExport):
        dynamic = (dynamic, )  # forward(*args): one positional group
    torch.onnx.export(module, tuple(args), path, input_names=input_names,
                      output_names=output_names, dynamic_shapes=dynamic, dynamo=True,
                      opset_version=18, external_data=False, verbose=False)


def export_onnx(model: nn.Module, out_dir: str, batch: int = 2) -> dict:
    """Export a trained 2D model's encoder and head to ``out_dir`` (see the module docstring).

    Written into a staging folder and moved into ``out_dir`` when complete.

    Args:
        model (nn.Module): from :func:`init_model` (``SAMSegmentor`` or
            ``MultiHypothesisSegmentor``); left unchanged (a copy is exported).
        out_dir (str): output folder (created).
        batch (int): the example batch traced (the exported batch axis is dynamic).

    Returns:
        dict: the deployment record (also ``deploy.json``), with ``notes`` on what was done.
    """
    if is_volume_model(model):
        raise ValueError(f'{type(model).__name__} (3D, sliding window) is not exported; ONNX '
                         'export covers 2D SAMed/H-SAM and box-prompted heads')
    if getattr(model.decode_head, 'reads_image', False):
        raise ValueError(f'{type(model.decode_head).__name__} with net_input=image reads the '
                         'image in the head; it is not exported')
    if type(model.decode_head).__name__ == 'PSAMHead':
        raise ValueError('PSAMHead samples its latent at random per call; it is not exported '
                         '(the ONNX graph would not be deterministic)')
    size = model_input_size(model)
    if size is None:
        raise ValueError('the model states no input size (backbone.img_size)')
    model = copy.deepcopy(model).cpu().eval()
    notes = []
    merged = merge_lora(model)
    if merged:
        notes.append(f'LoRA merged into {merged} qkv projections')
    adapters = [type(m).__name__ for m in model.backbone.modules()
                if type(m).__name__.endswith('Adapter')]
    if adapters:
        notes.append(f'adapters exported unfolded (non-linear): {sorted(set(adapters))}')
    num_hypotheses = None
    boxed = is_hypothesis_model(model)
    if boxed:
        num_hypotheses = model.test_cfg.get('num_hypotheses') or model.decode_head.num_hypotheses
    # new wrapper modules start in training mode; torch.onnx.export warns about that
    encoder = EncoderForExport(model).eval()
    head = HeadForExport(model, size, num_hypotheses).eval()
    image = torch.randn(batch, 3, *size)
    with torch.no_grad():
        feats = encoder(image)
    feat_names = [f'feat{i}' for i in range(len(feats))]
    head_args = list(feats) + ([torch.tensor([[8.0, 8.0, size[1] - 8.0, size[0] - 8.0]] *
                                             batch)] if boxed else [])
    head_inputs = feat_names + (['boxes'] if boxed else [])
    with staged_files(out_dir, 'export') as stage:
        try:
            _export(encoder, [image], osp.join(stage, ENCODER_FILE), ['image'], feat_names)
        except Exception as err:  # the fused attention kernel may not trace
            if not use_reference_attention(model):
                raise
            notes.append(f'encoder exported with attn_impl=reference (same weights): the '
                         f'fused path failed ({type(err).__name__})')
            _export(encoder, [image], osp.join(stage, ENCODER_FILE), ['image'], feat_names)
        _export(head, head_args, osp.join(stage, HEAD_FILE), head_inputs, ['logits'])
        record = dict(
            kind='hypotheses' if boxed else 'semantic', input_size=list(size),
            num_classes=int(model.num_classes), out_channels=int(model.out_channels),
            num_hypotheses=num_hypotheses, align_corners=bool(model.align_corners),
            threshold=getattr(model.decode_head, 'threshold', None),
            encoder_outputs=feat_names, head_inputs=head_inputs,
            dataset_meta=_jsonable(getattr(model, 'dataset_meta', None)), notes=notes)
        with open(osp.join(stage, DEPLOY_FILE), 'w') as f:
            json.dump(record, f, indent=2)
        model.cfg.dump(osp.join(stage, CONFIG_FILE))
    return record


def _jsonable(meta):
    if not meta:
        return None
    return json.loads(json.dumps(meta, default=lambda v: list(v) if hasattr(v, '__iter__')
                                 else str(v)))

"""The CVPR 2025 interactive protocol at test time: a box, then simulated corrective clicks.

``MultiHypothesisSegmentor(test_cfg=dict(interactive=dict(num_clicks=5, user='error')))``
runs, for every test image, step 0 with the sample's own prompt (its box), then ``num_clicks``
steps that each add one simulated click and feed the previous low-resolution logits back as
SAM's mask prompt. The image encoder runs once per batch; every step reuses its features
(through the segmentor's embedding-cache slot), so only the prompt encoder, the mask decoder
and a neck run per step. Each sample is decoded alone at every step (the head pads different
click counts with SAM's not-a-point token, which changes a padded sample's logits a little).

Users (``user``):

- ``'error'``: the challenge's simulated user: a click at the centre of the largest error
  region of the previous step's mask (:func:`next_click`), positive in a false negative,
  negative in a false positive; no click once the mask is perfect.
- ``'suggestion'``: accepts :func:`suggest_next_click` on the previous step's hypotheses (the
  centre of the low-agreement region with the largest disagreement mass) and labels the point
  by the ground truth (positive where the target is). When the hypotheses agree everywhere
  (nothing to suggest) the user clicks at the largest error instead (``'error_fallback'``).

Outputs on each SegDataSample (see docs/interactive.md):

- ``interactive_steps``: PixelData, ``data`` (S, H, W) uint8, S = 1 + num_clicks: the
  consensus mask after each step at the original size (step 0: the prompt alone);
- ``interactive_clicks``: list of S dicts ``point`` ([x, y] or None), ``label`` (1/0 or
  None), ``source`` ('box', 'error', 'suggestion', 'error_fallback' or None when no click was
  made) and ``agreement`` (the suggestion's agreement value, else None);
- ``interactive_target``: PixelData (1, H, W), the label map the clicks were simulated from
  (``gt_sem_seg``, or the prompted reader's mask where the pipeline resized ``gt_sem_seg``);
- ``interactive_agreement`` (with ``keep_agreement=True``): PixelData (S, H, W) float32, the
  hypotheses' agreement ``max(p, 1 - p)`` after each step;
- ``pred_sem_seg`` / ``pred_hypotheses`` (/ ``hypothesis_logits``): the last step's, and the
  last step's clicks as ``prompt_points`` / ``prompt_point_labels`` in the metainfo.
"""
import zlib
from typing import List

import numpy as np
import torch
from mmengine.structures import PixelData

from mmsam.datasets.transforms.click_simulator import next_click
from ..decode_heads.box_prompt_head import PROMPT_MASK_KEY, mean_probability_logit
from ..utils.next_click_suggestion import agreement_map, suggest_next_click

INTERACTIVE_USERS = ('error', 'suggestion')
SUGGESTION_INPUTS = ('probabilities', 'masks')
INTERACTIVE_DEFAULTS = dict(num_clicks=5, user='error', seed=0, feed_back=True,
                            agreement_threshold=0.75, suggestion_input='probabilities',
                            ignore_index=255, keep_agreement=False)


def check_interactive_cfg(cfg: dict) -> dict:
    """Validate ``test_cfg.interactive`` and fill the defaults.

    Keys: ``num_clicks`` (int >= 0), ``user`` ('error' | 'suggestion'), ``seed`` (ties of the
    click simulator), ``feed_back`` (previous logits as the mask prompt), ``agreement_threshold``
    and ``suggestion_input`` ('probabilities': the mean sigmoid of the hypothesis logits, which
    also works for M = 1; 'masks': the hypotheses' votes) of the suggestions, ``ignore_index``
    (label never clicked) and ``keep_agreement``.
    """
    if not isinstance(cfg, dict):
        raise TypeError(f'model.test_cfg.interactive must be a dict, got {cfg!r}')
    unknown = sorted(set(cfg) - set(INTERACTIVE_DEFAULTS))
    if unknown:
        raise ValueError(f'model.test_cfg.interactive: unknown keys {unknown}; the keys are '
                         f'{sorted(INTERACTIVE_DEFAULTS)}')
    cfg = dict(INTERACTIVE_DEFAULTS, **cfg)
    if int(cfg['num_clicks']) != cfg['num_clicks'] or cfg['num_clicks'] < 0:
        raise ValueError(f'model.test_cfg.interactive.num_clicks must be an int >= 0, got '
                         f'{cfg["num_clicks"]!r}')
    if cfg['user'] not in INTERACTIVE_USERS:
        raise ValueError(f'model.test_cfg.interactive.user={cfg["user"]!r}; expected one of '
                         f'{INTERACTIVE_USERS}')
    if cfg['suggestion_input'] not in SUGGESTION_INPUTS:
        raise ValueError(f'model.test_cfg.interactive.suggestion_input='
                         f'{cfg["suggestion_input"]!r}; expected one of {SUGGESTION_INPUTS}')
    return cfg


def _slice_features(feats, index):
    """The features of image ``index`` of a batch (a tensor or a tuple/list of tensors)."""
    if isinstance(feats, torch.Tensor):
        return feats[index:index + 1]
    return type(feats)(_slice_features(f, index) for f in feats)


def _target(sample, ignore_index):
    """(target, valid) bool (H, W) at the original size: ``gt_sem_seg``, or where the pipeline
    resized it, the prompted reader's mask (``gt_annotations[prompt_annotation]``, packed at
    the loaded size by ``PackMultiAnnotatorInputs``)."""
    if 'gt_sem_seg' not in sample:
        raise KeyError(f'{sample.metainfo.get("img_path")}: the interactive protocol simulates '
                       'clicks from gt_sem_seg, which this test sample lacks (pack the label '
                       'in the test pipeline)')
    label = sample.gt_sem_seg.data.detach().cpu().numpy()[0]
    chosen = sample.metainfo.get('prompt_annotation')
    if label.shape != tuple(sample.ori_shape[:2]) and 'gt_annotations' in sample and \
            chosen is not None:  # the prompted reader's mask at the loaded size
        annotations = sample.gt_annotations.data.detach().cpu().numpy()
        label = annotations[chosen] if chosen >= 0 else np.zeros_like(annotations[0])
    if label.shape != tuple(sample.ori_shape[:2]):
        raise ValueError(f'{sample.metainfo.get("img_path")}: gt_sem_seg is {label.shape} but '
                         f'predictions are at ori_shape {tuple(sample.ori_shape[:2])}; load the '
                         'label after the Resize in the test pipeline')
    valid = label != ignore_index
    return (label != 0) & valid, valid, label


def _rng(sample, seed, step):
    key = zlib.crc32(str(sample.metainfo.get('img_path', '')).encode())
    return np.random.default_rng([int(seed), key, step])


class _CachedBackbone:
    """An embedding-cache callable that answers with one image's features."""

    def __init__(self, feats):
        self.feats = feats

    def __call__(self, backbone, inputs, data_samples):
        return self.feats


def encode_once(segmentor, inputs, data_samples):
    """The backbone's features of a batch, through the model's own embedding cache if set."""
    cache = segmentor.embedding_cache
    if cache is not None:
        return cache(segmentor.backbone, inputs, data_samples)
    return segmentor.backbone(inputs)


def run_interactive_protocol(segmentor, inputs: torch.Tensor,
                             data_samples: list) -> List:
    """Run the protocol on a batch (see the module docstring).

    Args:
        segmentor (MultiHypothesisSegmentor): with ``test_cfg.interactive``.
        inputs (Tensor): (B, 3, H, W) preprocessed images.
        data_samples (list[SegDataSample]): with prompts (``prompt_box``) and ``gt_sem_seg``.

    Returns:
        list[SegDataSample]: the inputs' samples with the outputs listed above.
    """
    cfg = check_interactive_cfg(segmentor.test_cfg['interactive'])
    feats = encode_once(segmentor, inputs, data_samples)
    old_cache = segmentor.embedding_cache
    try:
        for index, sample in enumerate(data_samples):
            segmentor.embedding_cache = _CachedBackbone(_slice_features(feats, index))
            _run_sample(segmentor, inputs[index:index + 1], sample, cfg)
    finally:
        segmentor.embedding_cache = old_cache
    return data_samples


def _decode(segmentor, inputs, sample, points, labels, mask_logits):
    """One step: the sample's prompts plus clicks (and mask) -> (result, low-res logits)."""
    step_sample = sample.clone()
    meta = dict(prompt_points=np.asarray(points, np.float32).reshape(-1, 2),
                prompt_point_labels=np.asarray(labels, np.int64).reshape(-1))
    if mask_logits is not None:
        meta[PROMPT_MASK_KEY] = mask_logits
    step_sample.set_metainfo(meta)
    low = segmentor.low_res_hypotheses(inputs, [step_sample])
    (result, ) = segmentor.write_hypotheses(inputs, [step_sample], low, return_logits=True)
    return result, low


def _run_sample(segmentor, inputs, sample, cfg):
    target, valid, label = _target(sample, cfg['ignore_index'])
    meta = sample.metainfo
    points = [list(p) for p in np.asarray(meta.get('prompt_points', np.zeros((0, 2))),
                                          np.float32).reshape(-1, 2)]
    labels = [int(v) for v in np.asarray(meta.get('prompt_point_labels', []),
                                         np.int64).reshape(-1)]
    result, low = _decode(segmentor, inputs, sample, points, labels, None)
    steps, agreements = [], []
    clicks = [dict(point=None, label=None, source='box', agreement=None)]

    def record(result):
        steps.append(result.pred_sem_seg.data[0].to(torch.uint8).cpu())
        if cfg['keep_agreement'] or cfg['user'] == 'suggestion':
            agreements.append(_agreement_input(result, cfg))

    record(result)
    for step in range(1, cfg['num_clicks'] + 1):
        click = _next_user_click(steps[-1].numpy(), target, valid, agreements, cfg,
                                 _rng(sample, cfg['seed'], step))
        clicks.append(click)
        if click['point'] is None:  # a perfect mask: nothing to correct, the mask stays
            steps.append(steps[-1].clone())
            if agreements:
                agreements.append(agreements[-1])
            continue
        points.append(click['point'])
        labels.append(click['label'])
        previous = None
        if cfg['feed_back']:
            previous = (low if low.shape[1] == 1 else mean_probability_logit(low))[0, 0]
        result, low = _decode(segmentor, inputs, sample, points, labels, previous)
        record(result)
    sample.pred_sem_seg = result.pred_sem_seg
    sample.pred_hypotheses = result.pred_hypotheses
    if segmentor.test_cfg.get('return_logits', False):
        sample.hypothesis_logits = result.hypothesis_logits
    sample.set_metainfo(dict(prompt_points=np.asarray(points, np.float32).reshape(-1, 2),
                             prompt_point_labels=np.asarray(labels, np.int64)))
    sample.interactive_steps = PixelData(data=torch.stack(steps))
    sample.interactive_clicks = clicks
    sample.interactive_target = PixelData(data=torch.from_numpy(np.asarray(label)[None]))
    if cfg['keep_agreement']:
        sample.interactive_agreement = PixelData(data=torch.from_numpy(np.stack(
            [agreement_map(a) for a in agreements]).astype(np.float32)))


def _agreement_input(result, cfg):
    """What the suggestion reads: (M, H, W) probabilities or masks at the original size."""
    if cfg['suggestion_input'] == 'masks':
        return result.pred_hypotheses.data.detach().cpu().numpy().astype(np.float32)
    return torch.sigmoid(result.hypothesis_logits.data.detach().float()).cpu().numpy()


def _next_user_click(pred, target, valid, agreements, cfg, rng):
    """The simulated user's click on the previous step's mask: a dict (see the module)."""
    if cfg['user'] == 'suggestion':
        suggestion = suggest_next_click(agreements[-1], agreement_threshold=cfg[
            'agreement_threshold'], valid=valid)
        if suggestion is not None:
            x, y = (int(v) for v in suggestion.point)
            return dict(point=[float(x), float(y)], label=int(target[y, x]),
                        source='suggestion', agreement=suggestion.agreement)
    found = next_click(pred, target, rng, valid=valid)
    if found is None:
        return dict(point=None, label=None, source=None, agreement=None)
    source = 'error' if cfg['user'] == 'error' else 'error_fallback'
    return dict(point=[float(v) for v in found[0]], label=int(found[1]), source=source,
                agreement=None)

"""Iterative click training: the interactive simulation of SAM, SAM-Med2D and nnInteractive.

One training step of a box-prompted :class:`MultiHypothesisSegmentor` with
``train_cfg=dict(click_iterations=N)`` runs the image encoder once, then decodes N + 1 rounds
from the same features:

- round 0 uses the pipeline's prompts (a box from ``BoxPromptFromAnnotation`` or
  ``ClickSimulator``, and any clicks it added);
- after each round the prediction is detached, brought to the loaded image's grid (as
  ``predict`` does: logits upsampled to the input, padding cropped, resized to ``ori_shape``,
  thresholded, the hypotheses' majority vote), and :func:`next_click` adds one click at the
  centre of the largest error region against the prompted object (``gt_sem_seg``): positive in
  a false negative, negative in a false positive. Clicks accumulate;
- with ``feed_back_mask=True`` (SAM's protocol) the previous round's low-resolution logits,
  detached, are the next round's mask prompt (``prompt_mask_logits``; the logit of the
  hypotheses' mean probability when M > 1).

The loss is the head's own ``loss_by_feat`` of every round, averaged over the rounds: the
gradient keeps the box-only loss's scale for any N (so a schedule tuned without clicks still
fits) and N = 0 is the box-only loss itself. No gradient passes through the click choice or
the fed-back mask; the encoder receives the gradient of every round through the shared
features.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmsam.datasets.transforms.click_simulator import next_click
from ..decode_heads.box_prompt_head import PROMPT_MASK_KEY, mean_probability_logit
from ..decode_heads.sam_decode_head import SAMDecodeHead

CLICK_TRAIN_KEYS = ('click_iterations', 'feed_back_mask')


def click_train_settings(train_cfg: Optional[dict], where: str) -> dict:
    """The click-training settings of a segmentor's ``train_cfg``, checked.

    Args:
        train_cfg (dict | None): e.g. ``dict(click_iterations=5, feed_back_mask=True)``.
        where (str): names the segmentor in errors.

    Returns:
        dict: ``click_iterations`` (int >= 0; 0: box-only training) and ``feed_back_mask``.
    """
    cfg = dict(train_cfg or {})
    unknown = sorted(set(cfg) - set(CLICK_TRAIN_KEYS))
    if unknown:
        raise ValueError(f'{where}: model.train_cfg keys {unknown} are read by nothing; the '
                         f'keys are {", ".join(CLICK_TRAIN_KEYS)}')
    iterations = cfg.get('click_iterations', 0)
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 0:
        raise ValueError(f'{where}: model.train_cfg.click_iterations must be an int >= 0, got '
                         f'{iterations!r}')
    feed_back = cfg.get('feed_back_mask', True)
    if not isinstance(feed_back, bool):
        raise ValueError(f'{where}: model.train_cfg.feed_back_mask must be True or False, got '
                         f'{feed_back!r}')
    return dict(click_iterations=int(iterations), feed_back_mask=feed_back)


def check_click_trainable(head, where: str) -> None:
    """Refuse heads whose training loss is not ``loss_by_feat(forward(...))``: the loop
    decodes each round with ``forward`` and scores it with ``loss_by_feat``."""
    if type(head).loss is not SAMDecodeHead.loss:
        raise TypeError(f'{where}: train_cfg.click_iterations needs a head whose loss is '
                        f'loss_by_feat(forward(...)) (MedSAMHead, SAMMCLHead); '
                        f'{type(head).__name__} defines its own loss')


def click_targets(samples: Sequence, ignore_index: int):
    """Each sample's prompted object and valid pixels on the loaded image's grid.

    Args:
        samples (list[SegDataSample]): with ``gt_sem_seg`` (1, h, w) and ``ori_shape``.
        ignore_index (int): label value that is never an error.

    Returns:
        list[tuple[ndarray, ndarray]]: (target, valid), each (H, W) bool at ``ori_shape``.
    """
    out = []
    for sample in samples:
        if 'gt_sem_seg' not in sample:
            raise KeyError(f'click training needs gt_sem_seg (the prompted object) in the sample '
                           f'of {sample.metainfo.get("img_path")}')
        label = sample.gt_sem_seg.data.float()[None]
        label = F.interpolate(label, size=tuple(sample.ori_shape[:2]), mode='nearest')[0, 0]
        label = label.cpu().numpy()
        valid = label != ignore_index
        out.append(((label != 0) & valid, valid))
    return out


def prediction_masks(logits: Tensor, samples: Sequence, input_size, align_corners: bool,
                     threshold: float) -> List[np.ndarray]:
    """Binary predictions on each loaded image's grid, as ``MultiHypothesisSegmentor.predict``
    makes them (the hypotheses' majority vote).

    Args:
        logits (Tensor): (B, M, h, w) head logits (detached).
        samples (list[SegDataSample]): with ``img_shape`` and ``ori_shape``.
        input_size (tuple[int, int]): the network input (H, W).
        align_corners (bool): of the bilinear resizes.
        threshold (float): probability threshold.

    Returns:
        list[ndarray]: (H, W) bool per sample at ``ori_shape``.
    """
    logits = F.interpolate(logits, size=tuple(input_size), mode='bilinear',
                           align_corners=align_corners)
    cut = torch.logit(torch.tensor(float(threshold))).item()
    masks = []
    for sample, sample_logits in zip(samples, logits):
        h, w = sample.img_shape[:2]
        sample_logits = F.interpolate(sample_logits[None, :, :h, :w],
                                      size=tuple(sample.ori_shape[:2]), mode='bilinear',
                                      align_corners=align_corners)[0]
        hypotheses = sample_logits > cut
        masks.append((2 * hypotheses.sum(0) > hypotheses.shape[0]).cpu().numpy())
    return masks


def add_click(sample, prediction: np.ndarray, target: np.ndarray, valid: np.ndarray,
              rng: np.random.Generator, mask_logits: Optional[Tensor]):
    """A new data sample (sharing the data) whose prompts add one :func:`next_click` (none when
    the prediction has no error) and, if given, ``mask_logits`` as the mask prompt."""
    meta = dict(sample.metainfo)
    points = np.asarray(meta.get('prompt_points', np.zeros((0, 2))), np.float32).reshape(-1, 2)
    labels = np.asarray(meta.get('prompt_point_labels', np.zeros(0)), np.int64).reshape(-1)
    click = next_click(prediction, target, rng, valid=valid)
    if click is not None:
        points = np.concatenate([points, click[0][None]])
        labels = np.append(labels, click[1])
    meta.update(prompt_points=points, prompt_point_labels=labels)
    if mask_logits is not None:
        meta[PROMPT_MASK_KEY] = mask_logits
    return sample.new(metainfo=meta)


def feedback_logits(logits: Tensor) -> Tensor:
    """The mask prompt of the next round: (B, h, w), the head's logits when M = 1, else the
    logit of the hypotheses' mean probability (as ``InteractiveSession`` feeds it back)."""
    return logits[:, 0] if logits.shape[1] == 1 else mean_probability_logit(logits)[:, 0]


def average_losses(rounds: List[Dict[str, Tensor]]) -> Dict[str, Tensor]:
    """The mean of each entry over the rounds (every round gives the same keys)."""
    return {key: torch.stack([r[key] for r in rounds]).mean(0) for key in rounds[0]}


def click_training_losses(segmentor, inputs: Tensor, data_samples: Sequence,
                          click_iterations: int, feed_back_mask: bool = True,
                          rng: Optional[np.random.Generator] = None) -> Dict[str, Tensor]:
    """Losses of one interactive training step (see the module docstring).

    Args:
        segmentor (MultiHypothesisSegmentor): with a head that :func:`check_click_trainable`.
        inputs (Tensor): (B, 3, H, W) preprocessed images.
        data_samples (list[SegDataSample]): with the initial prompts and ``gt_sem_seg``.
        click_iterations (int): N, the clicks added after the first round.
        feed_back_mask (bool): give each round the previous round's logits as mask prompt.
        rng (np.random.Generator | None): breaks ties in :func:`next_click`; None: drawn from
            numpy's global generator (seeded by mmengine's ``randomness``).

    Returns:
        dict[str, Tensor]: the head's losses averaged over the N + 1 rounds, plus the detached
        summed loss of the first and last rounds (``round0``, ``round{N}``; names without
        "loss", so they are logged but not optimised).
    """
    head = segmentor.decode_head
    check_click_trainable(head, type(segmentor).__name__)
    rng = rng if rng is not None else np.random.default_rng(np.random.randint(2**31))
    feats = segmentor.head_inputs(inputs, data_samples)  # the only encoder pass of the step
    targets = click_targets(data_samples, head.ignore_index)
    samples, rounds = list(data_samples), []
    for step in range(click_iterations + 1):
        logits = head.forward(feats, samples)
        rounds.append(head.loss_by_feat(logits, samples))
        if step == click_iterations:
            break
        logits = logits.detach()
        predictions = prediction_masks(logits, samples, inputs.shape[-2:],
                                       segmentor.align_corners, head.threshold)
        fed_back = feedback_logits(logits) if feed_back_mask else [None] * len(samples)
        samples = [add_click(s, p, t, v, rng, m) for s, p, (t, v), m
                   in zip(samples, predictions, targets, fed_back)]
    losses = average_losses(rounds)
    for step in (0, click_iterations):
        total = sum(v for k, v in rounds[step].items() if 'loss' in k)
        losses[f'round{step}'] = total.detach()
    return losses

"""Interactive segmentation of one 2D image: encode once, then refine with boxes and clicks.

>>> session = InteractiveSession(model, image)           # runs the image encoder once
>>> first = session.predict(box=[x0, y0, x1, y1])
>>> second = session.predict(box=[x0, y0, x1, y1], points=[[x, y]], point_labels=[1])

Each :meth:`InteractiveSession.predict` runs only the prompt encoder and mask decoder (and the
neck, if any) on the cached image embedding, feeding the previous low-resolution logits back
as SAM's mask prompt (``use_previous``).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from mmsam.models.decode_heads.box_prompt_head import (PROMPT_MASK_KEY, BoxPromptHead,
                                                       mean_probability_logit)
from .inference import is_hypothesis_model, pack_slice, slice_pipeline


@dataclass
class InteractivePrediction:
    """One answer of an :class:`InteractiveSession`.

    Attributes:
        mask (ndarray): (H, W) uint8 in {0, 1}, the consensus of the hypotheses (majority
            vote), in the image's geometry.
        hypotheses (ndarray): (M, H, W) bool masks.
        logits (ndarray): (M, H, W) float32 hypothesis logits at the image's size.
        low_res_logits (Tensor): (1, M, h, w) the head's logits in the network input frame
            (what :meth:`InteractiveSession.predict` feeds back).
    """

    mask: np.ndarray
    hypotheses: np.ndarray
    logits: np.ndarray
    low_res_logits: torch.Tensor


class InteractiveSession:
    """A box-prompted model (MedSAM, SAM-MCL, SeqSAM, P-SAM) kept on one encoded image.

    The image goes through the config's test pipeline and the model's data preprocessor as in
    :func:`mmsam.apis.inference_model`, and the backbone runs once, here. Prompts are pixels of
    the given image: ``box`` (x0, y0, x1, y1), ``points`` (N, 2) (x, y) with ``point_labels``
    (N,) 1 foreground / 0 background.

    The mask fed back (``use_previous``) is the head's low-resolution logit map: its only
    output when M = 1, else the logit of the hypotheses' mean probability.

    Args:
        model (nn.Module): a ``MultiHypothesisSegmentor`` with a ``BoxPromptHead`` from
            :func:`mmsam.apis.init_model`.
        image (ndarray): (H, W) in [0, 1] or (H, W, 3) in 0-255.
        embedding_cache (callable, optional): ``cache(backbone, inputs, data_samples)`` in place
            of ``backbone(inputs)``, e.g. an on-disk
            :class:`~mmsam.apis.inference_embedding_cache.InferenceEmbeddingCache`, so a new
            session on the same image does not run the encoder again.
        where (str): the image's name in errors.
    """

    @torch.no_grad()
    def __init__(self, model: nn.Module, image: np.ndarray, embedding_cache=None,
                 where: str = 'the session image'):
        self.check_model(model)
        self.model = model
        packed = pack_slice(slice_pipeline(model.cfg), image, where=where)
        data = model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
        self.inputs = data['inputs']
        self.sample = data['data_samples'][0]
        self.image_shape = tuple(self.sample.ori_shape[:2])
        self.backbone_features = (model.backbone(self.inputs) if embedding_cache is None else
                                  embedding_cache(model.backbone, self.inputs, [self.sample]))
        self.previous_logits: Optional[torch.Tensor] = None

    @staticmethod
    def check_model(model: nn.Module) -> None:
        """Raise a ValueError naming the model unless it is box-prompted."""
        if not is_hypothesis_model(model) or not isinstance(
                getattr(model, 'decode_head', None), BoxPromptHead):
            raise ValueError(f'InteractiveSession needs a box-prompted model (MedSAM, SAM-MCL, '
                             f'SeqSAM, P-SAM: a MultiHypothesisSegmentor with a BoxPromptHead), '
                             f'got {type(model).__name__} with '
                             f'{type(getattr(model, "decode_head", None)).__name__}')

    @property
    def low_res_shape(self) -> tuple:
        """(h, w) of the low-resolution logits the head gives and takes as a mask prompt."""
        size = self.model.decode_head.prompt_encoder.mask_input_size
        return tuple(int(s) for s in size)

    def set_previous_logits(self, logits, where: str = 'previous logits') -> None:
        """Use ``logits`` (h, w) (e.g. read back from a file) as the next mask prompt.

        Raises:
            ValueError: naming ``where``, when the shape is not :attr:`low_res_shape`.
        """
        logits = torch.as_tensor(np.asarray(logits, np.float32))
        if tuple(logits.shape) != self.low_res_shape:
            raise ValueError(f'{where}: low-resolution logits of shape {tuple(logits.shape)} '
                             f'do not fit this model, whose mask prompt is {self.low_res_shape}')
        self.previous_logits = logits.to(self.inputs.device)

    @torch.no_grad()
    def predict(self, box: Optional[Sequence[float]] = None,
                points: Optional[Sequence[Sequence[float]]] = None,
                point_labels: Optional[Sequence[int]] = None,
                use_previous: bool = True) -> InteractivePrediction:
        """Segment with the given prompts (and the previous answer as a mask prompt).

        Args:
            box (Sequence[float], optional): (x0, y0, x1, y1), pixels of the image.
            points (Sequence, optional): (N, 2) clicks (x, y), pixels of the image.
            point_labels (Sequence[int], optional): (N,) 1 foreground, 0 background; default
                all foreground.
            use_previous (bool): feed the previous low-resolution logits back (none on the
                first call).

        Returns:
            InteractivePrediction: the mask in the image's geometry, hypotheses and logits.
        """
        meta = self._prompt_meta(box, points, point_labels)
        if use_previous and self.previous_logits is not None:
            meta[PROMPT_MASK_KEY] = self.previous_logits
        sample = self.sample.clone()
        sample.set_metainfo(meta)
        with self._cached_encoder() as captured:
            (result, ) = self.model.predict(self.inputs, [sample])
        low_res = captured['logits']
        self.previous_logits = (low_res if low_res.shape[1] == 1 else
                                mean_probability_logit(low_res))[0, 0].detach()
        return InteractivePrediction(
            mask=result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8),
            hypotheses=result.pred_hypotheses.data.cpu().numpy(),
            logits=result.hypothesis_logits.data.float().cpu().numpy(), low_res_logits=low_res)

    def reset(self) -> None:
        """Forget the previous answer (the next call starts without a mask prompt)."""
        self.previous_logits = None

    def _prompt_meta(self, box, points, point_labels):
        """Check the prompts against the image and return them as metainfo."""
        h, w = self.image_shape
        meta = {}
        if box is not None:
            box = np.asarray(box, np.float32).reshape(-1)
            if box.shape != (4, ):
                raise ValueError(f'InteractiveSession.predict: box must be (x0, y0, x1, y1), '
                                 f'got {box.tolist()}')
            meta['prompt_box'] = box
        if points is not None and len(points) > 0:
            points = np.asarray(points, np.float32).reshape(-1, 2)
            labels = (np.ones(len(points), np.int64) if point_labels is None else
                      np.asarray(point_labels, np.int64).reshape(-1))
            if len(labels) != len(points) or not np.isin(labels, (0, 1)).all():
                raise ValueError(f'InteractiveSession.predict: point_labels must give 1 '
                                 f'(foreground) or 0 (background) for each of the '
                                 f'{len(points)} points, got {labels.tolist()}')
            outside = (points < 0).any(1) | (points[:, 0] > w - 1) | (points[:, 1] > h - 1)
            if outside.any():
                raise ValueError(f'InteractiveSession.predict: points {points[outside].tolist()} '
                                 f'lie outside the {w} x {h} (W x H) image')
            meta.update(prompt_points=points, prompt_point_labels=labels)
        if not meta:
            raise ValueError('InteractiveSession.predict: give a box, points or both')
        return meta

    @contextmanager
    def _cached_encoder(self):
        """While open, the model's encoder answers with this image's features (its embedding
        cache hook), the head's low-resolution logits are captured, and ``test_cfg`` asks for
        the logits."""
        model, head = self.model, self.model.decode_head
        captured = {}
        predict_hypotheses = head.predict_hypotheses

        def capturing(*args, **kwargs):
            captured['logits'] = predict_hypotheses(*args, **kwargs)
            return captured['logits']

        old_cache, old_cfg = model.embedding_cache, model.test_cfg
        model.embedding_cache = lambda backbone, inputs, samples: self.backbone_features
        model.test_cfg = dict(old_cfg, return_logits=True)
        head.predict_hypotheses = capturing
        try:
            yield captured
        finally:
            del head.predict_hypotheses
            model.embedding_cache, model.test_cfg = old_cache, old_cfg

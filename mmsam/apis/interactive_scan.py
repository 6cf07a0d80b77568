"""Clicks on a scan with a box-prompted model, call after call (``tools/infer.py --points``).

:func:`inference_scan_interactive` segments each slice that has a box or clicks with an
:class:`~mmsam.apis.InteractiveSession` (the encoder's features read from an on-disk
:class:`~mmsam.apis.inference_embedding_cache.InferenceEmbeddingCache` when given), feeding a
previous run's low-resolution logits back as SAM's mask prompt. The logits it gives are what
:func:`write_logits_file` saves as ``NAME_logits.npz``, the ``previous_mask`` of the next call:

* ``low_res_logits`` (S, h, w) float32: per segmented slice, the logits fed back (the head's
  output when M = 1, else the logit of the hypotheses' mean probability), in the network
  input frame (h = w = 4x the embedding grid);
* ``slices`` (S,) int64: their slice indices;
* ``shape`` (3,) int64: the scan's (D, H, W); ``input_sha256``: a digest of its stored voxels,
  so logits of another scan (or of a changed file) are refused.
"""
import hashlib
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch.nn as nn

from mmsam.datasets.io.scan import read_scan
from mmsam.utils.io import atomic_savez
from .interactive_session import InteractiveSession
from .scan_inference import ScanPrediction, model_space
from .volume_interactive_session import VolumeInteractiveSession

LOGITS_SUFFIX = '_logits.npz'


def volume_digest(volume: np.ndarray) -> str:
    """sha256 of a volume's float32 values and shape (which scan a logits file belongs to)."""
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    sha = hashlib.sha256(f'{volume.shape}'.encode())
    sha.update(volume.tobytes())
    return sha.hexdigest()


def write_logits_file(path: str, logits: Dict[int, np.ndarray], shape: Sequence[int],
                      input_sha256: str) -> str:
    """Save per-slice low-resolution logits (see the module docstring), atomically.

    Args:
        path (str): the ``.npz`` file.
        logits (dict[int, ndarray]): slice index -> (h, w) float32.
        shape (Sequence[int]): the scan's (D, H, W).
        input_sha256 (str): :func:`volume_digest` of the scan's stored voxels.

    Returns:
        str: ``path``.
    """
    slices = sorted(logits)
    stacked = (np.stack([np.asarray(logits[k], np.float32) for k in slices]) if slices else
               np.zeros((0, 0, 0), np.float32))
    atomic_savez(path, low_res_logits=stacked, slices=np.asarray(slices, np.int64),
                 shape=np.asarray(shape, np.int64), input_sha256=np.asarray(input_sha256))
    return path


def read_logits_file(path: str, input_path: str, shape: Sequence[int],
                     input_sha256: str) -> Dict[int, np.ndarray]:
    """Per-slice logits of a ``NAME_logits.npz``, checked to belong to ``input_path``.

    Raises:
        ValueError: naming the file: unreadable, a missing key, another scan's logits.
    """
    try:
        with np.load(path) as data:
            missing = {'low_res_logits', 'slices', 'shape', 'input_sha256'} - set(data.files)
            if missing:
                raise ValueError(f'previous mask {path}: missing {sorted(missing)}; give the '
                                 f'NAME{LOGITS_SUFFIX} that tools/infer.py --save-logits wrote')
            logits, slices = data['low_res_logits'], data['slices']
            stored_shape, digest = tuple(data['shape'].tolist()), str(data['input_sha256'])
    except (OSError, ValueError) as err:
        if str(err).startswith('previous mask'):
            raise
        raise ValueError(f'previous mask {path}: cannot read it as an .npz ({err})') from err
    if stored_shape != tuple(shape) or digest != input_sha256:
        raise ValueError(f'previous mask {path}: written for another input (shape '
                         f'{stored_shape}, voxels sha256 {digest[:12]}...), not for '
                         f'{input_path} (shape {tuple(shape)}, sha256 {input_sha256[:12]}...)')
    return {int(k): logits[n] for n, k in enumerate(slices)}


def inference_scan_interactive(
        model: nn.Module, path: str, boxes: Dict[int, tuple],
        points: Dict[int, Tuple[np.ndarray, np.ndarray]], previous_mask: Optional[str] = None,
        intensity: str = 'auto', window: Optional[Tuple[float, float]] = None,
        max_voxels: Optional[int] = None, embedding_cache=None
) -> Tuple[ScanPrediction, Dict[int, np.ndarray], str]:
    """Segment the slices of a scan that have a box or clicks.

    Args:
        model (nn.Module): a box-prompted ``MultiHypothesisSegmentor``.
        path (str): the scan (NIfTI, MetaImage, DICOM folder).
        boxes (dict[int, tuple]): slice -> (x0, y0, x1, y1), pixels of the slice.
        points (dict[int, tuple]): slice -> (coords (N, 2) (x, y), labels (N,) 1 / 0).
        previous_mask (str, optional): a ``NAME_logits.npz`` of this scan; its logits are the
            mask prompt of the slices it covers.
        intensity, window, max_voxels: as in :func:`mmsam.apis.inference_scan`.
        embedding_cache (callable, optional): see :class:`InteractiveSession`.

    Returns:
        tuple: the :class:`ScanPrediction` (consensus labels, M hypotheses, agreement, in the
        scan's geometry), the slices' fed-back logits {k: (h, w)}, and the scan's
        :func:`volume_digest`.
    """
    volume, geometry = read_scan(path, max_voxels=max_voxels)
    digest = volume_digest(volume)
    previous = (read_logits_file(previous_mask, path, volume.shape, digest)
                if previous_mask is not None else {})
    image = model_space(model, volume, geometry, intensity, window)
    prompted = sorted(set(boxes) | set(points))
    hypotheses, labels, logits = None, np.zeros(image.shape, np.uint8), {}
    for k in prompted:
        session = InteractiveSession(model, image[k], embedding_cache=embedding_cache,
                                     where=f'{path} slice {k}')
        if k in previous:
            session.set_previous_logits(previous[k], f'previous mask {previous_mask} slice {k}')
        coords, point_labels = points.get(k, (None, None))
        answer = session.predict(box=boxes.get(k), points=coords, point_labels=point_labels)
        if hypotheses is None:
            hypotheses = np.zeros((answer.hypotheses.shape[0], ) + image.shape, np.uint8)
        hypotheses[:, k] = answer.hypotheses
        labels[k] = answer.mask
        logits[k] = session.previous_logits.float().cpu().numpy()
    agreement = hypotheses.mean(0, dtype=np.float32)
    prediction = ScanPrediction(labels=labels, geometry=geometry, image=image,
                                hypotheses=hypotheses, agreement=agreement, prompted=prompted)
    return prediction, logits, digest


def inference_scan_propagated(
        model: nn.Module, path: str, boxes: Dict[int, tuple],
        clicks: List[Tuple[float, float, int, int]], intensity: str = 'auto',
        window: Optional[Tuple[float, float]] = None, max_voxels: Optional[int] = None,
        embedding_cache=None, box_margin: int = 0
) -> Tuple[ScanPrediction, Dict[int, np.ndarray], str]:
    """Replay a :class:`VolumeInteractiveSession` on a scan: each box slice is a key slice
    (``segment_box``, in slice order), then the clicks in the order given (``click``).

    With an ``embedding_cache`` a replay with one more click runs only the decoder: the
    session's state (propagated boxes, fed-back logits) is rebuilt from the prompts, so the
    answer equals one session given the same boxes and clicks in turn.

    Args:
        model (nn.Module): a box-prompted ``MultiHypothesisSegmentor``.
        path (str): the scan.
        boxes (dict[int, tuple]): key slice -> (x0, y0, x1, y1).
        clicks (list[tuple]): (x, y, z, label) in order (:func:`mmsam.apis.prompts.click_list`).
        intensity, window, max_voxels: as in :func:`mmsam.apis.inference_scan`.
        embedding_cache (callable, optional): see :class:`InteractiveSession`.
        box_margin (int): see :class:`VolumeInteractiveSession`.

    Returns:
        tuple: as :func:`inference_scan_interactive`'s (every segmented slice in ``prompted``).
    """
    volume, geometry = read_scan(path, max_voxels=max_voxels)
    image = model_space(model, volume, geometry, intensity, window)
    session = VolumeInteractiveSession(model, image, embedding_cache=embedding_cache,
                                       box_margin=box_margin)
    for k in sorted(boxes):
        session.segment_box(boxes[k], k)
    for x, y, z, label in clicks:
        session.click(x, y, z, label)
    segmented = sorted(session.answers)
    num = session.answers[segmented[0]].hypotheses.shape[0]
    hypotheses = np.zeros((num, ) + image.shape, np.uint8)
    for k in segmented:
        hypotheses[:, k] = session.answers[k].hypotheses
    logits = {k: session.slice_session(k).previous_logits.float().cpu().numpy() for k in segmented}
    prediction = ScanPrediction(labels=session.masks.copy(), geometry=geometry, image=image,
                                hypotheses=hypotheses,
                                agreement=hypotheses.mean(0, dtype=np.float32),
                                prompted=segmented)
    return prediction, logits, volume_digest(volume)


def logits_file_name(out_dir: str, name: str) -> str:
    """Where ``tools/infer.py --save-logits`` writes a scan's logits."""
    return osp.join(out_dir, name + LOGITS_SUFFIX)

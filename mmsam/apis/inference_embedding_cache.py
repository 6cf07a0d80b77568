"""On-disk image-embedding cache for inference: a second ``tools/infer.py`` call (one more
click on the same scan) or a new :class:`~mmsam.apis.InteractiveSession` on the same image
reads the encoder's features back instead of running the encoder again.

It is :class:`mmsam.engine.embedding_cache.EmbeddingCache` (atomic entries, the storage dtype
rounding, unreadable entries recomputed) in the folder that :meth:`EmbeddingCache.for_backbone`
names after everything that changes the features: the backbone and data-preprocessor configs,
the test pipeline's pixel-changing steps, a digest of the encoder weights in use (so another
checkpoint gets another folder), the encoder's source code and the library versions. Inside
that folder an entry is keyed by the content of the preprocessed input itself (a blake2b digest
of the pixels the encoder sees, its dtype and shape) and the autocast state: the same file
read with the same intensity options gives the same key, whatever its path, and a changed file,
slice or intensity window gives another.
"""
import json
from typing import Optional

import torch
import torch.nn as nn
from mmseg.structures import SegDataSample

from mmsam.engine.embedding_cache import EmbeddingCache
from mmsam.engine.embedding_cache_rules import pipeline_cfgs
from .inference import config_test_pipeline

# Exact by default: the cache must never change an answer (float16 halves the disk).
DEFAULT_INFERENCE_DTYPE = 'float32'


class InferenceEmbeddingCache(EmbeddingCache):
    """An :class:`EmbeddingCache` keyed by the input pixels' digest (see the module docstring).

    Called as ``cache(backbone, inputs, data_samples)`` like its parent (``inputs`` (B, 3, H, W)
    preprocessed images); the data samples are not read. Build it with :meth:`for_model`.
    """

    @staticmethod
    def entry_key(data_sample: SegDataSample) -> str:
        meta = data_sample.metainfo
        return json.dumps(dict(pixels=meta['pixel_digest'], autocast=meta['autocast']),
                          sort_keys=True)

    def __call__(self, backbone: nn.Module, inputs: torch.Tensor, data_samples=None) -> tuple:
        autocast = (torch.get_autocast_dtype('cuda') if torch.is_autocast_enabled('cuda') else
                    torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu') else None)
        keyed = [SegDataSample(metainfo=dict(pixel_digest=self._input_digest(image),
                                             autocast=str(autocast))) for image in inputs]
        return super().__call__(backbone, inputs, keyed)

    @classmethod
    def for_model(cls, cache_root: str, model: nn.Module,
                  storage_dtype: str = DEFAULT_INFERENCE_DTYPE) -> 'InferenceEmbeddingCache':
        """The cache of ``model``'s encoder under ``cache_root/<BackboneType>-<digest>/``.

        Args:
            cache_root (str): the folder given as ``--embedding-cache`` (created).
            model (nn.Module): from :func:`mmsam.apis.init_model` (``model.cfg`` set), with its
                trained weights loaded.
            storage_dtype (str): 'float32' (default, exact), 'float16' or 'bfloat16'.

        Returns:
            InferenceEmbeddingCache
        """
        cfg = model.cfg
        return cls.for_backbone(
            None, model.backbone, cfg.model.get('backbone'), cfg.model.get('data_preprocessor'),
            pipeline_cfg=pipeline_cfgs(dict(pipeline=config_test_pipeline(cfg))),
            root=cache_root, verify_inputs=False, storage_dtype=storage_dtype)


def attach_embedding_cache(model: nn.Module, cache_root: Optional[str],
                           storage_dtype: str = DEFAULT_INFERENCE_DTYPE
                           ) -> Optional[InferenceEmbeddingCache]:
    """Make ``model.extract_feat`` read and write an :class:`InferenceEmbeddingCache`.

    Every path that runs the segmentor's ``extract_feat`` with data samples (slices, scans,
    sessions) then encodes each distinct input once per cache folder.

    Args:
        model (nn.Module): a segmentor with an ``embedding_cache`` slot (``SAMSegmentor`` and
            its subclasses).
        cache_root (str | None): the cache folder; None attaches nothing.
        storage_dtype (str): see :meth:`InferenceEmbeddingCache.for_model`.

    Returns:
        InferenceEmbeddingCache | None: the attached cache (its ``hits`` / ``misses`` count).
    """
    if cache_root is None:
        return None
    if not hasattr(model, 'embedding_cache'):
        raise ValueError(f'--embedding-cache {cache_root}: {type(model).__name__} has no '
                         'embedding-cache slot (SAMSegmentor and its subclasses have one)')
    cache = InferenceEmbeddingCache.for_model(cache_root, model, storage_dtype)
    model.embedding_cache = cache
    return cache

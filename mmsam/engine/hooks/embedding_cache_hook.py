"""Switches the segmentor's frozen-encoder embedding cache on where it gives the same features."""
from mmengine.hooks import Hook

from mmsam.registry import HOOKS
from ..embedding_cache import DEFAULT_STORAGE_DTYPE, EmbeddingCache
from ..embedding_cache_rules import (dataset_transforms, pipeline_cfgs, pipeline_reason,
                                     train_mode_reason, trainable_reason, unwrap)


@HOOKS.register_module()
class EmbeddingCacheHook(Hook):
    """Reuse a frozen image encoder's features across epochs via an :class:`EmbeddingCache`.

    Before training (and before validation and testing) it sets ``model.embedding_cache``
    for that phase when the cache gives exactly the features the encoder would give:

    - no backbone parameter requires grad (a frozen encoder without trainable LoRA/adapters);
    - in training, the backbone has no BatchNorm or dropout in training mode, and the data
      preprocessor has no ``batch_augments``;
    - every transform of the phase's pipeline before packing is known to leave pixels free of
      random draws (:data:`DETERMINISTIC_TRANSFORMS` plus ``deterministic_transforms``).

    Otherwise it logs why and leaves ``model.embedding_cache=None`` for that phase. The cache
    lives in ``<cache_dir>/<BackboneType>-<digest>/`` (see
    :meth:`EmbeddingCache.for_backbone`: the digest covers the backbone and preprocessor
    configs, the pixel-changing transforms, the encoder's weights and code, the library
    versions and the storage dtype). Before its first entry is written the free disk space for
    the whole phase's data set is checked. Hits and misses are logged after each training
    epoch.

    Args:
        cache_dir (str, optional): default ``<work_dir>/embedding_cache``.
        deterministic_transforms (Sequence[str]): more transform types that never change
            pixels at random.
        verify_inputs (bool): hits also check a digest of the input pixels (see
            :class:`EmbeddingCache`).
        storage_dtype (str): 'float16' (default: half the disk of float32), 'bfloat16' or
            'float32' (exact: the same losses as without the cache).
    """

    priority = 'NORMAL'

    def __init__(self, cache_dir=None, deterministic_transforms=(), verify_inputs=True,
                 storage_dtype=DEFAULT_STORAGE_DTYPE):
        if isinstance(deterministic_transforms, str):
            deterministic_transforms = [deterministic_transforms]
        self.cache_dir = cache_dir
        self.deterministic_transforms = tuple(deterministic_transforms)
        self.verify_inputs = verify_inputs
        self.storage_dtype = storage_dtype
        self.caches = {}  # phase -> EmbeddingCache | None
        self._logged = (0, 0)

    def reason_not_to_cache(self, runner, phase):
        """Why the cache cannot be used in ``phase`` ('train', 'val', 'test'), or None."""
        model = unwrap(runner.model)
        if not hasattr(model, 'embedding_cache') or not hasattr(model, 'backbone'):
            return f'{type(model).__name__} has no embedding_cache/backbone'
        reason = trainable_reason(model.backbone,
                                  (runner.cfg.get('model') or {}).get('backbone'))
        if reason is None and phase == 'train':
            reason = train_mode_reason(model.backbone)
            if reason is None and getattr(model.data_preprocessor, 'batch_augments', None):
                reason = 'the data preprocessor has batch_augments'
        if reason is not None:
            return reason
        loader = getattr(runner, f'{phase}_dataloader')
        for transforms in dataset_transforms(loader.dataset):
            reason = pipeline_reason(transforms, self.deterministic_transforms)
            if reason is not None:
                return f'the {phase} {reason[len("the "):]}'
        return None

    def _build_cache(self, runner, phase):
        model = unwrap(runner.model)
        model_cfg = runner.cfg.get('model', {}) or {}
        loader_cfg = runner.cfg.get(f'{phase}_dataloader', {}) or {}
        return EmbeddingCache.for_backbone(
            runner.work_dir, model.backbone, model_cfg.get('backbone'),
            model_cfg.get('data_preprocessor'), pipeline_cfgs(loader_cfg.get('dataset')),
            root=self.cache_dir, verify_inputs=self.verify_inputs,
            storage_dtype=self.storage_dtype, expected_entries=self._expected_entries(runner,
                                                                                     phase))

    @staticmethod
    def _expected_entries(runner, phase):
        """The number of samples of the phase's data set (None when it has no length)."""
        try:
            return len(getattr(runner, f'{phase}_dataloader').dataset)
        except TypeError:
            return None

    def _enable(self, runner, phase, rebuild):
        if rebuild or phase not in self.caches:
            reason = self.reason_not_to_cache(runner, phase)
            if reason is not None:
                runner.logger.info(f'EmbeddingCacheHook: no embedding cache for {phase}: '
                                   f'{reason}.')
                self.caches[phase] = None
            else:
                self.caches[phase] = self._build_cache(runner, phase)
                runner.logger.info(f'EmbeddingCacheHook: caching image embeddings for '
                                   f'{phase} in {self.caches[phase].cache_dir}')
        model = unwrap(runner.model)
        if hasattr(model, 'embedding_cache'):
            model.embedding_cache = self.caches[phase]

    def _restore(self, runner):
        """Back to the training cache (None outside training) after validation/testing."""
        model = unwrap(runner.model)
        if hasattr(model, 'embedding_cache'):
            model.embedding_cache = self.caches.get('train')

    def before_train(self, runner):
        self._enable(runner, 'train', rebuild=True)
        self._logged = (0, 0)
        # Weights cannot change in a run that may cache, but a later run (test) may load others.
        self.caches.pop('val', None)

    def after_train(self, runner):
        self.caches.pop('train', None)
        self._restore(runner)

    def before_val(self, runner):
        self._enable(runner, 'val', rebuild=False)

    def after_val(self, runner):
        self._restore(runner)

    def before_test(self, runner):
        self._enable(runner, 'test', rebuild=True)

    def after_test(self, runner):
        self._restore(runner)

    def after_train_epoch(self, runner):
        cache = self.caches.get('train')
        if cache is None:
            return
        hits, misses = cache.hits - self._logged[0], cache.misses - self._logged[1]
        self._logged = (cache.hits, cache.misses)
        runner.logger.info(f'EmbeddingCacheHook: epoch {runner.epoch + 1}: {hits} hits, '
                           f'{misses} misses (total {cache.hits} hits, {cache.misses} misses)')

"""Switches the segmentor's frozen-encoder embedding cache on where it gives the same features."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from mmsam.registry import HOOKS
from ..embedding_cache import DEFAULT_STORAGE_DTYPE, EmbeddingCache

# Transforms whose output pixels depend only on their input (and config): no random draw
# touches the image. BoxPromptFromAnnotation draws at random, but only reads the masks.
# mmcv/mmseg's Resize is deterministic with or without keep_ratio (RandomResize is not).
DETERMINISTIC_TRANSFORMS = frozenset({
    'LoadMultiAnnotatorSample', 'LoadNpzSlice', 'BoxPromptFromAnnotation',
    'PackMultiAnnotatorInputs', 'PackSegInputs', 'LoadImageFromFile', 'LoadImageFromNDArray',
    'LoadAnnotations', 'LoadBiomedicalImageFromFile', 'LoadBiomedicalAnnotation', 'Resize',
    'ResizeToMultiple', 'ResizeShortestEdge',
})
# Deterministic transforms that do not change the image at all: left out of the cache digest,
# so that pipelines differing only in them (train and test prompts) share one cache folder.
PIXEL_NEUTRAL_TRANSFORMS = frozenset({
    'BoxPromptFromAnnotation', 'PackMultiAnnotatorInputs', 'PackSegInputs', 'LoadAnnotations',
    'LoadBiomedicalAnnotation',
})
PACK_TRANSFORMS = frozenset({'PackMultiAnnotatorInputs', 'PackSegInputs'})


def _type_name(transform_type):
    """'mmseg.Resize' or a class -> 'Resize'."""
    if isinstance(transform_type, str):
        return transform_type.split('.')[-1]
    return getattr(transform_type, '__name__', str(transform_type))


def unwrap(model):
    """The model inside a DDP-style wrapper."""
    return model.module if is_model_wrapper(model) else model


def trainable_reason(backbone, backbone_cfg=None):
    """Why a backbone's features can change during training, or None.

    Args:
        backbone (nn.Module): the image encoder.
        backbone_cfg (dict, optional): its config, to name the adapter type.

    Returns:
        str | None: e.g. ``'the encoder has trainable parameters (LoRA adapter: ...)'``.
    """
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    if not trainable:
        return None
    adapter = set(getattr(backbone, 'adapter_param_names', ()))
    if adapter and set(trainable) <= adapter:
        adapter_cfg = (backbone_cfg or {}).get('adapter') or {}
        what = f"{_type_name(adapter_cfg['type'])} adapter" if 'type' in adapter_cfg \
            else 'adapter'
        return (f'the encoder has trainable parameters ({what}: {len(trainable)} tensors, '
                f'e.g. {trainable[0]})')
    frozen = getattr(backbone, 'frozen', None)
    hint = ' (frozen=False)' if frozen is False else ''
    return (f'the encoder has trainable parameters{hint}: {len(trainable)} tensors, e.g. '
            f'{trainable[0]}')


def train_mode_reason(backbone):
    """Why a frozen backbone's training-mode output is not a function of the image, or None.

    Checked whatever the module's current mode: training switches it to training mode.
    """
    for name, module in backbone.named_modules():
        if isinstance(module, _BatchNorm):
            return f'the encoder has BatchNorm ({name}), whose output depends on the batch'
        if isinstance(module, _DropoutNd) and module.p > 0:
            return f'the encoder has dropout ({name}), which is random in training'
    return None


def dataset_transforms(dataset):
    """Every pipeline's transforms of a dataset, through dataset wrappers (Concat, Repeat...).

    Returns:
        list[list]: one list of built transforms per pipeline.
    """
    if hasattr(dataset, 'datasets'):
        return [p for d in dataset.datasets for p in dataset_transforms(d)]
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'pipeline'):
        return dataset_transforms(dataset.dataset)
    pipeline = getattr(dataset, 'pipeline', None)
    return [list(getattr(pipeline, 'transforms', []) or [])]


def pipeline_reason(transforms, extra_deterministic=()):
    """The first transform before packing that may change pixels at random, described, or None.

    Args:
        transforms (list): built transforms (or their configs) of one pipeline.
        extra_deterministic (Iterable[str]): more transform types known to be deterministic.

    Returns:
        str | None
    """
    allowed = DETERMINISTIC_TRANSFORMS | set(extra_deterministic)
    for transform in transforms:
        name = _type_name(transform['type']) if isinstance(transform, dict) \
            else type(transform).__name__
        if name in PACK_TRANSFORMS:
            break
        if name not in allowed:
            return (f'the pipeline has {name}, which may change pixels at random (if it does '
                    f"not, add '{name}' to EmbeddingCacheHook(deterministic_transforms=...))")
    return None


def pipeline_cfgs(dataset_cfg):
    """The pixel-changing transform configs of a dataset config (through wrappers), or None."""
    if dataset_cfg is None:
        return None
    if 'datasets' in dataset_cfg:
        return [pipeline_cfgs(d) for d in dataset_cfg['datasets']]
    if 'pipeline' not in dataset_cfg and 'dataset' in dataset_cfg:
        return pipeline_cfgs(dataset_cfg['dataset'])
    return [t for t in dataset_cfg.get('pipeline', [])
            if not (isinstance(t, dict) and _type_name(t.get('type')) in PIXEL_NEUTRAL_TRANSFORMS)]


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

"""When the frozen-encoder embedding cache gives the same features as the encoder: the
model, backbone and pipeline checks shared by :class:`EmbeddingCacheHook` and the benchmark."""
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

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

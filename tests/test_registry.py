"""Configs under default_scope='mmsam' find mmsam's components and mmseg's / mmengine's."""
from mmengine.registry import DefaultScope

from mmsam.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS, VISUALIZERS


def test_default_scope_is_mmsam():
    assert DefaultScope.get_current_instance().scope_name == 'mmsam'


def test_mmsam_components_are_registered_in_mmsam_scope():
    for registry, name in ((MODELS, 'SAMImageEncoder'), (MODELS, 'LoRA'), (MODELS, 'SAMedHead'),
                           (MODELS, 'SAMSegmentor'), (MODELS, 'SAMMaskDecoder'),
                           (MODELS, 'SAMPromptEncoder'), (MODELS, 'MultiClassDiceLoss'),
                           (DATASETS, 'SyntheticAbdomenDataset'), (TRANSFORMS, 'LoadNpzSlice'),
                           (METRICS, 'VolumeDiceHD95Metric'),
                           (HOOKS, 'SliceVisualizationHook')):
        assert name in registry.module_dict, name


def test_parent_components_resolve_through_the_child_registries():
    assert MODELS.get('SegDataPreProcessor').__module__.startswith('mmseg.')
    assert MODELS.get('CrossEntropyLoss').__module__.startswith('mmseg.')
    assert MODELS.get('DiceLoss').__module__.startswith('mmseg.')
    assert TRANSFORMS.get('PackSegInputs').__module__.startswith('mmseg.')
    assert METRICS.get('IoUMetric').__module__.startswith('mmseg.')
    assert HOOKS.get('CheckpointHook').__module__.startswith('mmengine.')
    assert VISUALIZERS.get('SegLocalVisualizer').__module__.startswith('mmseg.')

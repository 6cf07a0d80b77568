"""Configs under default_scope='mmsam' find mmsam's components and mmseg's / mmengine's."""
from mmsam.registry import HOOKS, METRICS, MODELS, TRANSFORMS, VISUALIZERS

# mmsam's own names are found by every test that builds them by ``type=`` under
# default_scope='mmsam': test_config_builds[*] (every model of configs/), the dataset and
# transform tests (DATASETS.build / pipelines), test_volume_dice_hd95_metric (METRICS.build).


def test_parent_components_resolve_through_the_child_registries():
    assert MODELS.get('SegDataPreProcessor').__module__.startswith('mmseg.')
    assert MODELS.get('CrossEntropyLoss').__module__.startswith('mmseg.')
    assert MODELS.get('DiceLoss').__module__.startswith('mmseg.')
    assert TRANSFORMS.get('PackSegInputs').__module__.startswith('mmseg.')
    assert METRICS.get('IoUMetric').__module__.startswith('mmseg.')
    assert HOOKS.get('CheckpointHook').__module__.startswith('mmengine.')
    assert VISUALIZERS.get('SegLocalVisualizer').__module__.startswith('mmseg.')

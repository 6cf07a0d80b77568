"""Every config in configs/ and projects/ builds its model (random weights, nothing loaded);
a former config name resolves to its new config."""
import os
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmsam.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
ALL_CONFIGS = sorted(p for pattern in ('configs/**/*.py', 'projects/**/configs/**/*.py')
                     for p in ROOT.glob(pattern) if '_base_' not in p.parts)
# A config's former name: comment lines and one `_base_ = ['./<new name>.py']`.
ALIAS = re.compile(r"(?:#[^\n]*\n)*_base_ = \['\./([\w.-]+\.py)'\]\n")
ALIASES = [p for p in ALL_CONFIGS if ALIAS.fullmatch(p.read_text())]
CONFIGS = [p for p in ALL_CONFIGS if p not in ALIASES]


def test_every_config_file_is_collected():
    """The parametrised tests cover every .py file under configs/ and under a configs/ folder
    of projects/ except the _base_ ones (listed here by os.walk, not by the glob above), the
    configs and the aliases split them, and a known alias is recognised as one."""
    expected = set()
    for top in (ROOT / 'configs', ROOT / 'projects'):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != '_base_']
            folder = Path(dirpath)
            if top.name == 'projects' and 'configs' not in folder.relative_to(top).parts:
                continue
            expected |= {folder / f for f in filenames if f.endswith('.py')}
    assert set(ALL_CONFIGS) == expected
    assert set(CONFIGS) | set(ALIASES) == expected and not set(CONFIGS) & set(ALIASES)
    assert ROOT / 'configs/hsam/hsam_synapse_10pct.py' in ALIASES
    assert ROOT / 'configs/samed/samed_vit-b_synapse.py' in CONFIGS


@pytest.mark.parametrize('path', ALIASES, ids=[str(p.relative_to(ROOT)) for p in ALIASES])
def test_alias_resolves_to_its_new_name(path):
    """An old config name is its new config: same settings, and the new one is no alias."""
    target = path.parent / ALIAS.fullmatch(path.read_text()).group(1)
    assert target in CONFIGS, f'{path.name} points to {target.name}, which is not a config'
    assert Config.fromfile(path).to_dict() == Config.fromfile(target).to_dict()


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmsam'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'optim_wrapper',
                'param_scheduler', 'val_evaluator', 'test_evaluator', 'train_cfg'):
        assert key in cfg, f'{path} lacks {key}'
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    assert isinstance(model, torch.nn.Module)


def test_real_data_config_without_sam_weights_says_where_to_get_them(tmp_path):
    cfg = Config.fromfile(ROOT / 'configs/samed/samed_vit-b_synapse.py')
    missing = str(tmp_path / 'sam_vit_b_01ec64.pth')
    cfg.merge_from_dict({'model.backbone.checkpoint': missing})
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match=r'sam_vit_b_01ec64\.pth not found.*Checkpoints'):
        model.init_weights()


def test_missing_synapse_data_names_the_converter(tmp_path):
    from mmsam.registry import DATASETS
    cfg = Config.fromfile(ROOT / 'configs/hsam/hsam_vit-b_synapse_10pct.py')
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'synapse')
    with pytest.raises(FileNotFoundError,
                       match=r'meta\.json not found.*dataset_converters/synapse\.py SRC'):
        DATASETS.build(cfg.train_dataloader.dataset)


def test_synapse_224_config_evaluates_at_the_original_resolution(tmp_path):
    """hsam_vit-l_synapse_full resizes slices to 224 for the model; labels must stay at 512."""
    import numpy as np

    from mmsam.datasets.io.data_root import write_meta, write_split
    from mmsam.datasets.io.npz import save_volume
    from mmsam.registry import DATASETS
    from mmsam.datasets.synapse_dataset import CLASSES
    save_volume(str(tmp_path / 'test_volumes' / 'case0001.npz'), np.random.rand(2, 512, 512),
                np.ones((2, 512, 512), np.uint8))
    write_split(str(tmp_path), 'test', ['case0001'])
    write_meta(str(tmp_path), dict(classes=list(CLASSES)))
    cfg = Config.fromfile(ROOT / 'configs/hsam/hsam_vit-l_synapse_full.py')
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    item = DATASETS.build(cfg.test_dataloader.dataset)[0]
    assert item['inputs'].shape == (3, 224, 224)
    assert item['data_samples'].gt_sem_seg.data.shape == (1, 512, 512)
    assert item['data_samples'].ori_shape == (512, 512)

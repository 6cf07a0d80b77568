"""Every config loads its SAM parts from one file: the encoder, prompt encoder and mask decoder
(SAM 2 on volumes: the encoder and the memory tracker) name the same checkpoint (one variable
per model base or override), and no config file writes a checkpoint path twice."""
import re
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
ALIAS = re.compile(r"(?:#[^\n]*\n)*_base_ = \['\./([\w.-]+\.py)'\]\n")
CONFIGS = sorted(p for pattern in ('configs/**/*.py', 'projects/**/configs/**/*.py')
                 for p in ROOT.glob(pattern)
                 if '_base_' not in p.parts and not ALIAS.fullmatch(p.read_text()))
PATH_LITERAL = re.compile(r"""['"][^'"#]*\.pth['"]""")


def checkpoint_entries(node, where='model'):
    """{dotted key: value} of every ``checkpoint`` entry in a (nested) model config."""
    found = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'checkpoint' and not isinstance(value, dict):
                found[f'{where}.{key}'] = value
            else:
                found.update(checkpoint_entries(value, f'{where}.{key}'))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found.update(checkpoint_entries(value, f'{where}[{i}]'))
    return found


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_sam_parts_share_one_checkpoint(path):
    model = Config.fromfile(path).model
    entries = checkpoint_entries(model.to_dict())
    # SAM 2 on volumes: the Hiera encoder and the memory tracker (SAM 2's other parts)
    parts = (('backbone', 'tracker') if model.type == 'SAM2VolumeSegmentor' else
             ('backbone', 'decode_head.prompt_encoder', 'decode_head.mask_decoder'))
    assert set(entries) == {f'model.{part}.checkpoint' for part in parts}, entries
    assert len(set(entries.values())) == 1, f'{path.name}: parts load different files: {entries}'


def test_each_file_writes_a_checkpoint_path_at_most_once():
    files = sorted((ROOT / 'configs').rglob('*.py')) + sorted(
        (ROOT / 'projects').rglob('configs/**/*.py'))
    for path in files:
        code = '\n'.join(line.split('#')[0] for line in path.read_text().splitlines())
        literals = PATH_LITERAL.findall(code)
        assert len(literals) <= 1, f'{path.relative_to(ROOT)} writes {literals}'


def test_a_part_with_its_own_file_is_caught():
    cfg = Config.fromfile(ROOT / 'configs/samed/samed_vit-b_synapse.py')
    cfg.merge_from_dict({'model.decode_head.mask_decoder.checkpoint': 'other.pth'})
    assert len(set(checkpoint_entries(cfg.model.to_dict()).values())) == 2

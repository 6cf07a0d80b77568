"""tools/analysis_tools: parameter counts by module and class frequencies."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'mmsam_analysis_{name}', REPO / 'tools' / 'analysis_tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_params_groups_encoder_adapter_and_decoder_stages(capsys):
    groups = load_tool('count_params').main([str(REPO / 'configs/hsam/hsam_synapse_10pct.py')])
    assert groups['backbone'][1] == 0  # frozen
    assert groups['backbone adapter'] == (147456, 147456)  # LoRA r=4 on q, v of 12 blocks
    assert groups['decode_head.mask_decoder'] == groups['decode_head.stage2_decoder']
    total = sum(t for t, _ in groups.values())
    assert 96e6 < total < 98.5e6
    assert 'all' in capsys.readouterr().out


def test_class_frequencies_counts_label_pixels(tmp_path):
    from mmsam.datasets.volume_io import save_slice, write_meta, write_split
    label = np.zeros((4, 4), np.uint8)
    label[0, :3] = 1
    label[1, 0] = 2
    save_slice(str(tmp_path / 'train_slices' / 'c_slice000.npz'), np.zeros((4, 4)), label)
    write_split(str(tmp_path), 'train', ['c_slice000'])
    write_meta(str(tmp_path), dict(classes=['bg', 'a', 'b']))
    config = tmp_path / 'cfg.py'
    config.write_text(f"train_dataloader = dict(dataset=dict(type='VolumeSliceDataset', "
                      f"data_root={str(tmp_path)!r}, split='train', "
                      f"pipeline=[dict(type='LoadNpzSlice')]))\n")
    freqs = load_tool('class_frequencies').main([str(config)])
    np.testing.assert_allclose(freqs, [12 / 16, 3 / 16, 1 / 16])
    assert freqs.sum() == pytest.approx(1)

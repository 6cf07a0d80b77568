"""The official H-SAM network (the paper-table head) trains and tests through tools/train.py
and tools/test.py: the demo's tiny ViT and data with hsam_vit-b.py's official switches."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import synthetic_abdomen_options, train_shrunk_synthetic_abdomen

pytestmark = pytest.mark.slow  # tools run end to end (see pytest.ini)
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs' / 'hsam' / 'hsam_vit-tiny_synthetic-abdomen.py'
# 16-pixel patches, as SAM's: the official stage 2 upsamples the grid 16x to the input size
OFFICIAL = f"""_base_ = ['{DEMO}']
model = dict(
    backbone=dict(arch=dict(patch_size=16, window_size=8), pos_embed_resize='bilinear'),
    decode_head=dict(
        prompt_encoder=dict(type='HSAMPromptEncoder', patch_size=16),
        mask_decoder=dict(type='HSAMMaskDecoder', block_order='cross_first'),
        stage2_decoder=dict(type='HSAMStage2Decoder', transformer_dim=64,
                            transformer_mlp_dim=256, transformer_num_heads=4,
                            iou_head_hidden_dim=64),
        cmattn_mode='official', cmattn_weighting='softmax', cmattn_mlp_dim=128,
        prior_resize='bilinear', stage_fusion='logits', loss_label_resize='zoom'))
"""


def test_official_network_trains_and_tests(tmp_path):
    config = tmp_path / 'hsam_official_tiny.py'
    config.write_text(OFFICIAL)
    checkpoint, data_root = train_shrunk_synthetic_abdomen(config, tmp_path)
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    assert 'decode_head.stage2_decoder.skip_connect.0.weight' in state
    assert 'decode_head.cmattn.med_sel.0.weight' in state
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'test.py'), str(config), str(checkpoint),
         '--work-dir', str(tmp_path / 'test'), '--cfg-options',
         *synthetic_abdomen_options(data_root)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'mDice' in proc.stdout + proc.stderr

"""tools/model_converters/mmsam2sam.py: a trained mmsam model loads into segment-anything."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import build_reference_sam
from conftest import tiny_box_prompt_segmentor_cfg as segmentor_cfg
from mmsam.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'model_converters' / 'mmsam2sam.py'


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_export_loads_into_segment_anything_with_identical_weights(tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(segmentor_cfg('MedSAMHead'))
    for p in model.parameters():
        p.data.normal_()  # a "trained" model: weights unlike any initialisation
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'sam_layout.pth'
    proc = run(ckpt, out)
    assert proc.returncode == 0, proc.stderr
    sam = build_reference_sam()
    sam.load_state_dict(torch.load(out, weights_only=True), strict=True)
    torch.testing.assert_close(sam.image_encoder.pos_embed, model.backbone.pos_embed)
    torch.testing.assert_close(sam.mask_decoder.mask_tokens.weight,
                               model.decode_head.mask_decoder.mask_tokens.weight)
    # and as the checkpoint of a new mmsam model
    cfg = segmentor_cfg('SAMMCLHead')
    cfg['backbone']['checkpoint'] = str(out)
    cfg['decode_head']['mask_decoder']['checkpoint'] = str(out)
    reloaded = MODELS.build(cfg)
    reloaded.init_weights()
    torch.testing.assert_close(reloaded.backbone.pos_embed, model.backbone.pos_embed)
    assert run(ckpt, out).returncode != 0  # exists: needs --overwrite
    assert run(ckpt, out, '--overwrite').returncode == 0


def test_refuses_adapters_and_foreign_checkpoints(tmp_path):
    lora = tmp_path / 'lora.pth'
    torch.save(dict(state_dict={'backbone.blocks.0.attn.qkv.lora_a.q.weight': torch.zeros(1),
                                'decode_head.mask_decoder.x': torch.zeros(1)}), lora)
    proc = run(lora, tmp_path / 'a.pth')
    assert proc.returncode != 0 and 'LoRA' in proc.stderr
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'encoder.weight': torch.zeros(1)}), other)
    proc = run(other, tmp_path / 'b.pth')
    assert proc.returncode != 0 and 'image_encoder' in proc.stderr
    assert not (tmp_path / 'b.pth').exists()

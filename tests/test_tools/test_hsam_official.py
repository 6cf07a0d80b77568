"""H-SAM's official models: tools/model_converters/hsam2mmsam.py on the shared fixture pack's
H-SAM files (the official code's 224 build on tiny random weights), check_official.py's 'hsam'
case, a synthesised 512-build file, and refused files."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmsam.models.converters import TOLERANCE, check_fixture
from mmsam.models.converters.hsam import stage2_widths
from mmsam.models.converters.official_check import build_model, load_fixture, sam_widths
from mmsam.models.converters.source_keys import load_into_model_strictly

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / 'shared' / 'fixtures' / 'official' / 'hsam'
TOOLS = REPO / 'tools' / 'model_converters'
CONFIG = REPO / 'configs' / 'hsam' / 'hsam_vit-b_synapse_10pct.py'

pytestmark = pytest.mark.skipif(
    not FIXTURE.is_dir(), reason=f'{FIXTURE} (the shared official-code fixture pack, '
    '../shared next to the repository) is absent in this clone')


def run(tool, *args):
    return subprocess.run([sys.executable, str(TOOLS / tool), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def model_for(arch, config=CONFIG):
    cfg = Config.fromfile(str(config))
    sam_widths(cfg.model, arch, 'fused')
    stage2_widths(cfg.model, arch)
    return build_model(cfg.model)


@pytest.mark.parametrize('attn_impl', ['fused', 'reference'])
def test_every_official_output_matches(attn_impl):
    torch.set_num_threads(1)
    result = check_fixture(str(FIXTURE), str(REPO), attn_impl)
    failing = {k: d for k, d in result['diffs'].items() if d is None or d > TOLERANCE}
    assert not failing, f'{failing}; notes: {result["notes"]}'
    assert set(result['diffs']) == {
        'stage1_low_res_logits', 'stage1_masks', 'stage2_low_res_logits', 'fused_masks',
        'fused_pred_labels', 'loss', 'loss_stage1', 'loss_stage2', 'stage1_weight_epoch0'}
    # the loss ran through mmsam's label path: the head's zoom gives the official labels
    assert any('0 of 3136 low-res labels differ' in note for note in result['notes'])


def test_segment_anything_block_order_is_not_the_official_model(tmp_path):
    """The same weights in SAM's block order (mmsam's former reading) fail the check."""
    config = tmp_path / 'sam_order.py'
    config.write_text(f"_base_ = ['{CONFIG}']\n"
                      "model = dict(decode_head=dict(mask_decoder=dict(block_order='sam')))\n")
    torch.set_num_threads(1)
    result = check_fixture(str(FIXTURE), str(REPO), 'fused', str(config))
    assert not result['passed'] and result['diffs']['stage1_low_res_logits'] > 1e-2


def test_converter_cli_maps_every_key_and_loads_strictly(tmp_path):
    out = tmp_path / 'hsam_mmsam.pth'
    proc = run('hsam2mmsam.py', FIXTURE / 'sam_base_1024.pth', FIXTURE / 'hsam_lora.pth', out,
               '--img-size', 224)
    assert proc.returncode == 0, proc.stderr
    # the base's decoder parts and the prompt_encoder2 alias are dropped, with the reasons
    assert 'prompt_encoder2 is the same module as prompt_encoder' in proc.stdout
    assert 'as LoRA_Sam.load_lora_parameters does' in proc.stdout
    assert 'LoRA rank 5' in proc.stdout and 'stage-2 CMAttn width 196 (7 heads)' in proc.stdout
    assert 'config: ' in proc.stdout
    meta, _, _ = load_fixture(str(FIXTURE))
    state = torch.load(out, weights_only=True)['state_dict']
    model = model_for(meta['arch'])
    load_into_model_strictly(model, state, str(out))
    lora = torch.load(FIXTURE / 'hsam_lora.pth', weights_only=True)
    head = model.decode_head
    assert torch.equal(head.cmattn.med_sel[0].weight, lora['mask_decoder2.med_sel.0.weight'])
    assert torch.equal(head.stage2_decoder.output_hypernetworks_mlps[3].layers[4].weight,
                       lora['mask_decoder2.output_hypernetworks_mlps2.3.layers.4.weight'])
    assert torch.equal(head.prompt_encoder.point_embeddings[10].weight,
                       lora['prompt_encoder.point_embeddings.10.weight'])
    assert torch.equal(model.backbone.blocks[1].attn.qkv.lora_b.v.weight, lora['w_b_003'])
    # no file is left behind under a temporary name
    assert sorted(p.name for p in tmp_path.iterdir()) == ['hsam_mmsam.pth']


def test_tools_name_the_converter_for_an_official_file():
    from mmsam.models.converters.detect import official_format_hint
    assert 'hsam2mmsam.py' in official_format_hint(str(FIXTURE / 'hsam_lora.pth'))


def _lora_with(tmp_path, edit):
    lora = torch.load(FIXTURE / 'hsam_lora.pth', weights_only=True)
    edit(lora)
    path = tmp_path / 'edited_lora.pth'
    torch.save(lora, path)
    return path


@pytest.mark.parametrize('old,new', [
    ('mask_decoder2.skip_connect.3.weight', 'mask_decoder2.skip_conect.3.weight'),
    ('mask_decoder2.med_sel.0.bias', 'mask_decoder2.med_select.0.bias'),
    ('mask_decoder.iou_token.weight', 'mask_decoder.iou_tokens.weight'),
    ('w_a_002', 'w_a_2'),
])
def test_a_renamed_key_is_refused_and_named(tmp_path, old, new):
    path = _lora_with(tmp_path, lambda d: d.__setitem__(new, d.pop(old)))
    out = tmp_path / 'out.pth'
    proc = run('hsam2mmsam.py', FIXTURE / 'sam_base_1024.pth', path, out, '--img-size', 224)
    assert proc.returncode != 0
    # named as found (unknown) or as expected (missing)
    assert any(name.split('.', 1)[-1] in proc.stderr for name in (old, new)), proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_wrong_shapes_sizes_and_a_diverging_alias_are_refused(tmp_path):
    base = FIXTURE / 'sam_base_1024.pth'

    def shrink(d):
        d['mask_decoder2.output_hypernetworks_mlps2.0.layers.4.weight'] = torch.zeros(3, 64)

    proc = run('hsam2mmsam.py', base, _lora_with(tmp_path, shrink), tmp_path / 'a.pth',
               '--img-size', 224)
    assert proc.returncode != 0
    assert 'output_hypernetworks_mlps2.0.layers.4.weight' in proc.stderr, proc.stderr

    def diverge(d):
        d['prompt_encoder2.no_mask_embed.weight'] = d['prompt_encoder2.no_mask_embed.weight'] + 1

    proc = run('hsam2mmsam.py', base, _lora_with(tmp_path, diverge), tmp_path / 'b.pth',
               '--img-size', 224)
    assert proc.returncode != 0 and "prompt_encoder2.no_mask_embed.weight" in proc.stderr
    # the 224 build at 512: the CMAttn width says which input it was trained at
    proc = run('hsam2mmsam.py', base, FIXTURE / 'hsam_lora.pth', tmp_path / 'c.pth')
    assert proc.returncode != 0 and '196' in proc.stderr and '--img-size' in proc.stderr


def test_the_512_build_converts_and_runs(tmp_path):
    """The 512 build's stage-2 CMAttn is 1024 wide (8 heads); everything else as the 224's."""
    gen = torch.Generator().manual_seed(0)

    def widen(d):
        for key in [k for k in d if k.startswith('mask_decoder2.') and k.split('.')[1] in (
                'self_attn', 'self_attn2', 'norm1', 'norm2', 'mlp')]:
            shape = [1024 if n == 196 else n for n in d[key].shape]
            d[key] = torch.randn(*shape, generator=gen) * 0.02

    path = _lora_with(tmp_path, widen)
    out = tmp_path / 'hsam512.pth'
    proc = run('hsam2mmsam.py', FIXTURE / 'sam_base_1024.pth', path, out, '--img-size', 512)
    assert proc.returncode == 0, proc.stderr
    assert 'stage-2 CMAttn width 1024 (8 heads)' in proc.stdout
    meta, _, _ = load_fixture(str(FIXTURE))
    arch = dict(meta['arch'], img_size=512, stage2_token_attention_heads=8)
    model = model_for(arch)
    load_into_model_strictly(model, torch.load(out, weights_only=True)['state_dict'], str(out))
    with torch.no_grad():
        logits1, logits2 = model.decode_head(model.extract_feat(torch.rand(1, 3, 512, 512)))
    assert logits1.shape == (1, 9, 128, 128) and logits2.shape == (1, 9, 512, 512)
    assert torch.isfinite(logits2).all()

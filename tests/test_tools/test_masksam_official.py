"""MaskSAM's official checkpoint (bxie9/MaskSAM, nnU-Net v2): masksam2mmsam.py and the fixture
check (../shared/fixtures/official/masksam: the official network run on tiny random weights),
renamed keys and shapes refused by name, strict loading in the paper-table config, and the
official switches checked against the official code's formulas written out."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmsam.models.converters import TOLERANCE, ConversionError, check_fixture
from mmsam.models.converters.masksam import apply_summary, convert_masksam
from mmsam.models.converters.official_check import build_model, quiet_logging

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / 'shared' / 'fixtures' / 'official' / 'masksam'
CHECKPOINT = FIXTURE / 'checkpoint_final.pth'
CONVERTER = REPO / 'tools' / 'model_converters' / 'masksam2mmsam.py'
CHECK = REPO / 'tools' / 'model_converters' / 'check_official.py'
SYNAPSE = REPO / 'configs' / 'masksam' / 'masksam_vit-h_synapse.py'

needs_fixture = pytest.mark.skipif(
    not FIXTURE.is_dir(), reason=f'{FIXTURE} (the shared official-code fixture pack, ../shared '
    'next to the repository) is absent in this clone')


def run(tool, *args):
    return subprocess.run([sys.executable, str(tool), *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@needs_fixture
@pytest.mark.parametrize('attn_impl', ['fused', 'reference'])
def test_fixture_matches_official_outputs(attn_impl):
    torch.set_num_threads(1)
    result = check_fixture(str(FIXTURE), str(REPO), attn_impl)
    assert set(result['diffs']) == {'pred_logits', 'pred_masks', 'pred_aux_masks',
                                    'pred_aux_bboxes', 'semantic_scores'}
    failing = {k: d for k, d in result['diffs'].items() if d is None or d > TOLERANCE}
    assert not failing, f'{failing}; notes: {result["notes"]}'


@needs_fixture
def test_mmsam_reading_is_not_the_official_network(tmp_path):
    """The variant config (the patch fills SAM's frame, adapters on whole slices) loads the same
    weights but computes other outputs: the check fails and says so."""
    proc = run(CHECK, FIXTURE, '--config',
               REPO / 'configs' / 'masksam' / 'masksam_vit-h_synapse_mmsam-reading.py')
    assert proc.returncode == 1 and 'FAIL' in proc.stdout, proc.stdout + proc.stderr
    assert 'pred_masks' in proc.stdout


@needs_fixture
def test_every_key_is_accounted_for_and_widths_come_from_the_file():
    state, summary, report = convert_masksam(str(CHECKPOINT))
    official = torch.load(CHECKPOINT, map_location='cpu', weights_only=True)
    weights = official['network_weights']
    dupes = [k for k in weights if '.all_modules.' in k]
    assert len(state) == len(weights) - len(dupes)
    text = '\n'.join(report)
    for entry in official:
        if entry != 'network_weights':
            assert repr(entry) in text
    assert f'dropped {len(dupes)} key(s)' in text
    # meta.json's shrunk widths, read back from the tensors
    assert summary['encoder']['embed_dim'] == 24 and summary['prompt_width'] == 64
    assert summary['generator']['channels'] == (64, 32, 32, 16, 16)
    assert summary['generator']['scales'] == (1, 2, 4, 8, 16)
    assert summary['num_frames'] == 2 and summary['generator']['num_queries'] == 2
    assert summary['num_classes'] == 3 and summary['canvas_size'] == 1024
    assert summary['refine'] == dict(hidden=64, upsample=4)
    assert summary['stem']['channels'] == (8,) and summary['stem']['upsample'] == 1
    # the 64 x 64 table cropped to the patch's 16 x 16 top-left corner
    pos = weights['sam_model.image_encoder.pos_embed']
    assert torch.equal(state['backbone.pos_embed'], pos[:, :16, :16])
    assert state['backbone.depth_embed'].shape == (1, 2, 1, 1, 24)
    assert summary['config'] == 'configs/masksam/masksam_vit-h_synapse.py'


def _edited_checkpoint(tmp_path, edit):
    ckpt = torch.load(CHECKPOINT, map_location='cpu', weights_only=True)
    edit(ckpt['network_weights'])
    path = tmp_path / 'edited.pth'
    torch.save(ckpt, path)
    return path


@needs_fixture
def test_a_renamed_key_is_refused_by_name(tmp_path):
    def rename(weights):
        weights['bbox_conv.convs.0.nrm.weight'] = weights.pop('bbox_conv.convs.0.norm.weight')
    path = _edited_checkpoint(tmp_path, rename)
    with pytest.raises(ConversionError, match='bbox_conv.convs.0.norm.weight'):
        convert_masksam(str(path))
    out = tmp_path / 'out.pth'
    proc = run(CONVERTER, path, out)
    assert proc.returncode != 0 and 'bbox_conv.convs.0.norm.weight' in proc.stderr
    assert not out.exists()


@needs_fixture
def test_an_extra_key_and_a_wrong_shape_are_refused_by_name(tmp_path):
    def extra(weights):
        weights['sam_model.mask_decoder.transformer.layers.0.Extra_Adapter.D_fc1.weight'] = (
            torch.zeros(16, 64))
    with pytest.raises(ConversionError, match='Extra_Adapter'):
        convert_masksam(str(_edited_checkpoint(tmp_path, extra)))

    def shape(weights):
        key = 'sam_model.mask_decoder.transformer.layers.1.MLP_Queries_Adapter.T_fc1.weight'
        weights[key] = torch.zeros(8, 3)
    with pytest.raises(ConversionError, match='MLP_Queries_Adapter.T_fc1.weight'):
        convert_masksam(str(_edited_checkpoint(tmp_path, shape)))


@needs_fixture
def test_cli_writes_a_checkpoint_that_loads_strictly_in_the_printed_config(tmp_path):
    out = tmp_path / 'masksam_mmsam.pth'
    proc = run(CONVERTER, CHECKPOINT, out)
    assert proc.returncode == 0, proc.stderr
    assert 'config: configs/masksam/masksam_vit-h_synapse.py' in proc.stdout
    assert "dropped entry 'optimizer_state'" in proc.stdout
    assert run(CONVERTER, CHECKPOINT, out).returncode != 0  # no silent overwrite
    _, summary, _ = convert_masksam(str(CHECKPOINT))
    cfg = Config.fromfile(REPO / 'configs' / 'masksam' / 'masksam_vit-h_synapse.py')
    apply_summary(cfg.model, summary, decoder_heads=8)
    with quiet_logging(), pytest.warns(UserWarning, match='num_queries'):
        model = build_model(cfg.model)
    with quiet_logging():
        load_checkpoint(model, str(out), map_location='cpu', strict=True)
    meta = torch.load(out, map_location='cpu', weights_only=True)['meta']
    assert meta['converter'] == 'masksam2mmsam.py' and meta['trainer'] == 'MaskSAM_Synapse'


def test_not_an_nnunet_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'pos_embed': torch.zeros(1)}, path)
    with pytest.raises(ConversionError, match='network_weights'):
        convert_masksam(str(path))


def test_canvas_dense_pe_is_the_official_top_left_grid():
    """MaskSAMPromptEncoder's dense PE equals the official get_dense_pe(size=(64, 64)) written
    out (PositionEmbeddingRandom.forward with org_size: (cumsum - 0.5) / 64), and boxes are
    normalised by the 1024 frame."""
    from mmsam.models.prompts import MaskSAMPromptEncoder
    torch.manual_seed(0)
    pe = MaskSAMPromptEncoder(embed_dim=32, img_size=256, patch_size=16, canvas_size=1024)
    grid = torch.ones(16, 16)
    y = (grid.cumsum(0) - 0.5) / 64
    x = (grid.cumsum(1) - 0.5) / 64
    official = pe.pe_layer._pe_encoding(torch.stack([x, y], dim=-1)).permute(2, 0, 1)[None]
    torch.testing.assert_close(pe.get_dense_pe(), official, rtol=0, atol=0)
    box = torch.tensor([[10., 20., 100., 200.]])
    sparse, _ = pe(points=None, boxes=box, masks=None)
    corners = pe.pe_layer._pe_encoding((box.reshape(1, 2, 2) + 0.5) / 1024)
    corners[:, 0] += pe.point_embeddings[2].weight
    corners[:, 1] += pe.point_embeddings[3].weight
    torch.testing.assert_close(sparse, corners)
    with pytest.raises(ValueError, match='canvas_size=128'):
        MaskSAMPromptEncoder(embed_dim=32, img_size=256, canvas_size=128)


def test_official_acdc_stem_layout_and_count():
    """The official ACDC stem (MaskSAM_ACDC's first_conv): conv block 1 -> 16, ConvT 16 -> 16,
    ConvT 16 -> 32 (each + bare InstanceNorm + GELU), conv block 32 -> 32, conv block 32 -> 3:
    33,945 parameters (448 + 32, 1,040, 2,080, 27,680 + 64, 2,595 + 6)."""
    cfg = Config.fromfile(REPO / 'configs' / 'masksam' / 'masksam_vit-b_acdc.py')
    from mmsam.registry import MODELS
    from mmsam.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    stem = MODELS.build(cfg.model.stem)
    kinds = [type(m).__name__ for m in stem.layers]
    assert kinds == ['Conv3d', 'InstanceNorm3d', 'LeakyReLU',
                     'ConvTranspose3d', 'InstanceNorm3d', 'GELU',
                     'ConvTranspose3d', 'InstanceNorm3d', 'GELU',
                     'Conv3d', 'InstanceNorm3d', 'LeakyReLU',
                     'Conv3d', 'InstanceNorm3d', 'LeakyReLU']
    assert [stem.layers[i].out_channels for i in (0, 3, 6, 9, 12)] == [16, 16, 32, 32, 3]
    assert not stem.layers[4].affine and not stem.layers[7].affine
    assert sum(p.numel() for p in stem.parameters()) == 448 + 32 + 1040 + 2080 + 27744 + 2601
    assert sum(p.numel() for p in stem.parameters()) == 33945
    assert stem(torch.zeros(1, 1, 2, 8, 8)).shape == (1, 3, 2, 32, 32)


def test_sam_postprocess_is_the_official_acdc_round_trip():
    """mask_postprocess='sam' (the ACDC config) is SAM's postprocess_masks as the official ACDC
    code calls it, written out: bilinear to the 1024 input, crop (none), bilinear to 256; in 1D
    a [1/16, 7/8, 1/16] blur inside the image."""
    import torch.nn.functional as F
    cfg = Config.fromfile(REPO / 'configs' / 'masksam' / 'masksam_vit-b_acdc.py')
    assert cfg.model.decode_head.mask_postprocess == 'sam'
    torch.manual_seed(0)
    # in 1D, inside the image: up x4 then down x4 (both bilinear) is a [1/16, 7/8, 1/16] blur
    row = torch.randn(1, 1, 1, 16).expand(-1, -1, 16, -1)
    back = F.interpolate(F.interpolate(row, (64, 64), mode='bilinear', align_corners=False),
                         (16, 16), mode='bilinear', align_corners=False)[0, 0, 0]
    r = row[0, 0, 0]
    torch.testing.assert_close(back[1:-1], 0.875 * r[1:-1] + 0.0625 * (r[:-2] + r[2:]))
    from mmsam.registry import MODELS
    from mmsam.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    head = MODELS.build(dict(
        type='MaskSAMHead', num_classes=2, num_frames=1, num_queries=3,
        prompt_encoder=dict(type='MaskSAMPromptEncoder', embed_dim=16, img_size=64,
                            patch_size=16, canvas_size=64),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=16, transformer_mlp_dim=32,
                          transformer_num_heads=2, iou_head_hidden_dim=16),
        decoder_adapter=None, depth_pos_embed=False, refine=None, mask_postprocess='sam',
        loss_decode=dict(type='MaskClassificationCriterion', num_points=None)))
    head.eval()
    g = torch.Generator().manual_seed(1)
    inputs = dict(image_embedding=torch.randn(1, 16, 4, 4, generator=g),
                  aux_mask_logits=torch.randn(1, 3, 16, 16, generator=g),
                  aux_boxes=torch.tensor([[[0.1, 0.1, 0.6, 0.7]] * 3]),
                  aux_cls_tokens=torch.randn(1, 3, 16, generator=g))
    with torch.no_grad():
        ours = head(inputs)['mask_logits']
        head.mask_postprocess = 'direct'
        direct = head(inputs)['mask_logits']
    # the decoder's masks are at 4g = 16 = the patch: 'direct' keeps them, 'sam' blurs them
    round_trip = F.interpolate(F.interpolate(direct, (64, 64), mode='bilinear',
                                             align_corners=False),
                               (16, 16), mode='bilinear', align_corners=False)
    torch.testing.assert_close(ours, round_trip)
    assert (ours - direct).abs().max() > 1e-3

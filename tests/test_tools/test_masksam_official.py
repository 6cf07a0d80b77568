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
@pytest.mark.slow
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
@pytest.mark.slow
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


def _official_names(mmsam_state, acdc):
    """An mmsam MaskSAM state dict renamed to the official network's keys (the layout
    ``convert_masksam`` reads), with nnU-Net's duplicates: ``.all_modules.`` copies of every
    conv block and, for ACDC, the shared skip under ``image_decoder_skips_{first,second}``."""
    official = {}

    def block(prefix, ours, bias=True):
        official[f'{prefix}.conv.weight'] = mmsam_state[f'{ours[0]}.weight']
        official[f'{prefix}.all_modules.0.weight'] = mmsam_state[f'{ours[0]}.weight']
        if bias:
            official[f'{prefix}.conv.bias'] = mmsam_state[f'{ours[0]}.bias']
            official[f'{prefix}.all_modules.0.bias'] = mmsam_state[f'{ours[0]}.bias']
        for p in ('weight', 'bias'):
            official[f'{prefix}.norm.{p}'] = mmsam_state[f'{ours[1]}.{p}']
            official[f'{prefix}.all_modules.1.{p}'] = mmsam_state[f'{ours[1]}.{p}']

    sites = {'self_attn': 'Space_Queries_Adapter', 'cross_t2i': 'Cross_Space_Adapter1',
             'mlp': 'MLP_Queries_Adapter', 'cross_i2t': 'Cross_Space_Adapter2'}
    names = {'fc1': 'D_fc1', 'fc2': 'D_fc2', 'dwconv': 'T_DWconv', 'norm': 'norm',
             'depth_fc1': 'T_fc1', 'depth_fc2': 'T_fc2'}
    for key, value in mmsam_state.items():
        parts = key.split('.')
        if key == 'backbone.depth_embed':
            official['sam_model.image_encoder.temporal_embedding'] = value[:, :, 0, 0]
        elif key.startswith('backbone.') and ('space_adapter' in parts or 'mlp_adapter' in parts):
            site = 'Space_Adapter' if 'space_adapter' in parts else 'MLP_Adapter'
            official[f'sam_model.image_encoder.blocks.{parts[2]}.{site}.'
                     f'{names[parts[4]]}.{parts[5]}'] = value
        elif key.startswith('backbone.'):
            official['sam_model.image_encoder.' + key[len('backbone.'):]] = value
        elif key == 'decode_head.depth_pe':
            official['sam_model.prompt_encoder.temporal_embedding'] = value
        elif key.startswith('decode_head.prompt_encoder.'):
            official['sam_model.' + key[len('decode_head.'):]] = value
        elif key.startswith('decode_head.mask_decoder.'):
            official['sam_model.' + key[len('decode_head.'):]] = value
        elif key.startswith('decode_head.decoder_adapter.layers.'):
            official[f'sam_model.mask_decoder.transformer.layers.{parts[3]}.{sites[parts[4]]}.'
                     f'{names[parts[5]]}.{parts[6]}'] = value
        elif key.startswith('decode_head.decoder_adapter.final_t2i.'):
            official[f'sam_model.mask_decoder.transformer.Space_Adapter.{names[parts[3]]}.'
                     f'{parts[4]}'] = value
        elif key.startswith('decode_head.cls_token.'):
            official['sam_model.mask_decoder.classifier_token_Adapter.weight'] = value
        elif key.startswith('decode_head.cls_embed.'):
            official[f'sam_model.mask_decoder.classifier_embed_Adapter.{parts[-1]}'] = value
    levels = len({k.split('.')[2] for k in mmsam_state if k.startswith('neck.stages.')})
    stage_names = [f'image_decoder_stages.{lvl}' for lvl in range(3 if acdc else levels)]
    if acdc:
        stage_names += ['image_decoder_stages_second.0', 'image_decoder_stages_first.0']
    for lvl, name in enumerate(stage_names):
        convs = {int(k.split('.')[3]) // 3 for k in mmsam_state
                 if k.startswith(f'neck.stages.{lvl}.')}
        for j in convs:
            block(f'{name}.convs.{j}', (f'neck.stages.{lvl}.{3 * j}',
                                        f'neck.stages.{lvl}.{3 * j + 1}'))
        if 0 < lvl < len(stage_names) - (2 if acdc else 0):
            for p in ('weight', 'bias'):
                official[f'image_decoder_transpconvs.{lvl - 1}.{p}'] = \
                    mmsam_state[f'neck.ups.{lvl}.{p}']
    skips = {int(k.split('.')[2]) for k in mmsam_state if k.startswith('neck.skips.')}
    for i in skips:
        steps = {int(k.split('.')[3]) // 4 for k in mmsam_state
                 if k.startswith(f'neck.skips.{i}.')}
        copies = [f'image_decoder_skips.{i}']
        if acdc and i == max(skips):
            copies += ['image_decoder_skips_second.0', 'image_decoder_skips_first.0']
        for name in copies:
            for k in steps:
                for p in ('weight', 'bias'):
                    official[f'{name}.{2 * k}.{p}'] = mmsam_state[f'neck.skips.{i}.{4 * k}.{p}']
                block(f'{name}.{2 * k + 1}.convs.0', (f'neck.skips.{i}.{4 * k + 1}',
                                                      f'neck.skips.{i}.{4 * k + 2}'))
    for p in ('weight', 'bias'):
        official[f'image_decoder_seg_layers.0.{p}'] = mmsam_state[f'neck.mask_head.{p}']
    block('bbox_conv.convs.0', ('neck.box_head.0', 'neck.box_head.1'), bias=False)
    block('residual_classifier.convs.0', ('neck.cls_head.0', 'neck.cls_head.1'))
    for seq, ours in (('first_conv', 'stem.layers'), ('final_conv', 'decode_head.refine.layers')):
        positions = sorted({int(k.split('.')[-2]) for k in mmsam_state
                            if k.startswith(ours + '.')})
        index = 0
        for pos in positions:
            if pos % 3:
                continue
            w = mmsam_state[f'{ours}.{pos}.weight']
            if f'{ours}.{pos + 1}.weight' in mmsam_state:  # conv block
                block(f'{seq}.{index}.convs.0', (f'{ours}.{pos}', f'{ours}.{pos + 1}'))
                index += 1
            else:  # ConvT (+ bare IN + GELU: 3 official indices) or the last conv
                official[f'{seq}.{index}.weight'] = w
                official[f'{seq}.{index}.bias'] = mmsam_state[f'{ours}.{pos}.bias']
                index += 3 if tuple(w.shape[2:]) == (1, 2, 2) else 1
    return official


def test_acdc_layout_converts_and_loads_strictly_in_the_acdc_config(tmp_path):
    """A tiny network in the official ACDC layout (x4 stem with transposed convs, five
    generator levels of which the last three share one skip, duplicated under
    image_decoder_skips_{first,second}, no final_conv) converts back to the same weights and
    loads strictly in masksam_vit-b_acdc.py with the widths the converter read."""
    from mmsam.registry import MODELS
    from mmsam.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(REPO / 'configs' / 'masksam' / 'masksam_vit-b_acdc.py')
    m = cfg.model
    t, q, e, w = 2, 4, 32, 64
    m.stem.update(channels=(4,), up_channels=(4, 8), post_channels=(8,))
    m.backbone.update(arch=dict(embed_dim=e, depth=4, num_heads=2, global_attn_indexes=(0, 1, 2, 3),
                                window_size=4, out_chans=w),
                      img_size=256, num_frames=t, checkpoint=None, out_indices=(0, 1, 2, 3))
    m.neck.update(embed_dim=e, num_frames=t, num_queries=q, token_dim=w, neck_dim=w,
                  channels=(64, 32, 32, 32, 32), cls_pool=8, input_size=64)
    m.decode_head.update(num_frames=t, num_queries=q)
    m.decode_head.prompt_encoder.update(embed_dim=w, img_size=256, canvas_size=256,
                                        checkpoint=None)
    m.decode_head.mask_decoder.update(transformer_dim=w, transformer_mlp_dim=128,
                                      transformer_num_heads=2, iou_head_hidden_dim=w,
                                      checkpoint=None)
    m.test_cfg.update(patch_size=(t, 64, 64))
    with quiet_logging():
        model = MODELS.build(m)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    state = model.state_dict()
    weights = _official_names(state, acdc=True)
    assert 'image_decoder_skips_first.0.3.convs.0.conv.weight' in weights
    path = tmp_path / 'checkpoint_final.pth'
    torch.save(dict(network_weights=weights, trainer_name='MaskSAM_ACDC',
                    init_args=dict(fold=0), current_epoch=1000), path)
    converted, summary, report = convert_masksam(str(path))
    assert summary['config'] == 'configs/masksam/masksam_vit-b_acdc.py'
    assert summary['generator']['scales'] == (1, 2, 4, 4, 4)
    assert summary['generator']['share_skips'] and summary['refine'] is None
    assert summary['stem'] == dict(in_channels=1, channels=(4,), upsample=4, up_channels=(4, 8),
                                   post_channels=(8,), out_channels=3, up_norm_affine=False)
    assert any('image_decoder_skips.1 (shared skip' in line for line in report)
    assert set(converted) == set(state)
    for key, value in state.items():
        assert torch.equal(converted[key], value), key
    cfg2 = Config.fromfile(REPO / 'configs' / 'masksam' / 'masksam_vit-b_acdc.py')
    apply_summary(cfg2.model, summary, decoder_heads=2)
    cfg2.model.decode_head.prompt_encoder.canvas_size = 256
    with quiet_logging():
        rebuilt = build_model(cfg2.model)
    rebuilt.load_state_dict(converted, strict=True)
    assert rebuilt.decode_head.mask_postprocess == 'sam'


@needs_fixture
def test_the_layout_writer_reproduces_the_official_synapse_file():
    """_official_names (used for the ACDC layout above) turns the converted fixture back into
    the official file's keys and tensors, except the position tables the converter cropped."""
    state, _, _ = convert_masksam(str(CHECKPOINT))
    weights = torch.load(CHECKPOINT, map_location='cpu', weights_only=True)['network_weights']
    back = _official_names(state, acdc=False)
    assert set(back) == set(weights)
    resized = {k for k in weights if k.endswith(('pos_embed', 'rel_pos_h', 'rel_pos_w'))
               and weights[k].shape != back[k].shape}
    assert 'sam_model.image_encoder.pos_embed' in resized
    for key in set(weights) - resized:
        assert torch.equal(back[key], weights[key]), key


def test_top_left_position_table_is_the_official_crop():
    """pos_embed_resize='top_left' (the paper-table configs loading SAM's 1024 table for a 256
    input) is the official encoder's ``pos_embed[:, :h, :w]``; a larger grid is refused."""
    from mmsam.models.utils.sam_checkpoint import resize_abs_pos_embed
    table = torch.randn(1, 64, 64, 8)
    torch.testing.assert_close(resize_abs_pos_embed(table, (16, 16), 'top_left'),
                               table[:, :16, :16], rtol=0, atol=0)
    assert not torch.equal(resize_abs_pos_embed(table, (16, 16), 'bicubic'), table[:, :16, :16])
    with pytest.raises(ValueError, match='top_left'):
        resize_abs_pos_embed(table[:, :8, :8], (16, 16), 'top_left')

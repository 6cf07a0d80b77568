"""Official-checkpoint converters (tools/model_converters/samed2mmsam.py, psam2mmsam.py): key
mapping, every source key accounted for, renamed keys refused by name, strict loading in the
paper-table config."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from conftest import TINY_ARCH, build_reference_sam
from mmsam.models.converters.official_check import build_model, sam_widths
from mmsam.models.converters.source_keys import load_into_model_strictly

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools' / 'model_converters'
SAMED_CONFIG = REPO / 'configs' / 'samed' / 'samed_vit-b_synapse.py'
BASE_IMG, LORA_IMG, RANK = 128, 64, 2


def run(tool, *args):
    return subprocess.run([sys.executable, str(TOOLS / tool), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def tiny_meta_arch(img_size, **extra):
    """meta.json-style arch of conftest's TINY_ARCH SAM (decoder as build_reference_sam)."""
    a = TINY_ARCH
    return dict(encoder_embed_dim=a['embed_dim'], encoder_depth=a['depth'],
                encoder_num_heads=a['num_heads'],
                encoder_global_attn_indexes=list(a['global_attn_indexes']),
                window_size=a['window_size'], patch_size=a['patch_size'], img_size=img_size,
                mlp_ratio=4, prompt_embed_dim=a['out_chans'], out_chans=a['out_chans'],
                decoder_transformer_depth=2, decoder_transformer_mlp_dim=64,
                decoder_num_heads=2, iou_head_depth=3, iou_head_hidden_dim=32,
                mask_in_chans=16, **extra)


@pytest.fixture(scope='module')
def samed_files(tmp_path_factory):
    """A SAM base at 128 and a SAMed LoRA file (rank 2, 9 mask tokens) for a 64 input."""
    root = tmp_path_factory.mktemp('samed')
    base = build_reference_sam(img_size=BASE_IMG)
    torch.save(base.state_dict(), root / 'sam_base.pth')
    trained = build_reference_sam(img_size=LORA_IMG, num_multimask_outputs=8)
    gen = torch.Generator().manual_seed(1)
    dim = TINY_ARCH['embed_dim']
    lora = {}
    for i in range(2 * TINY_ARCH['depth']):
        lora[f'w_a_{i:03d}'] = torch.randn(RANK, dim, generator=gen)
    for i in range(2 * TINY_ARCH['depth']):
        lora[f'w_b_{i:03d}'] = torch.randn(dim, RANK, generator=gen)
    lora.update({k: v for k, v in trained.state_dict().items()
                 if k.startswith(('prompt_encoder.', 'mask_decoder.'))})
    torch.save(lora, root / 'samed_lora.pth')
    return root, base.state_dict(), lora


def samed_model():
    cfg = Config.fromfile(str(SAMED_CONFIG))
    sam_widths(cfg.model, tiny_meta_arch(LORA_IMG), 'fused')
    cfg.model.backbone.adapter.rank = RANK
    return build_model(cfg.model)


@pytest.mark.slow
def test_samed_converts_maps_lora_and_loads_strictly(samed_files, tmp_path):
    root, base, lora = samed_files
    out = tmp_path / 'samed_mmsam.pth'
    proc = run('samed2mmsam.py', root / 'sam_base.pth', root / 'samed_lora.pth', out,
               '--img-size', LORA_IMG)
    assert proc.returncode == 0, proc.stderr
    assert 'config: configs/samed/samed_vit-b_synapse.py' in proc.stdout or 'config:' in proc.stdout
    # the base's decoder and prompt encoder are dropped with the reason printed
    assert 'dropped' in proc.stdout and 'mask_decoder' in proc.stdout
    ckpt = torch.load(out, weights_only=True)
    state = ckpt['state_dict']
    model = samed_model()
    load_into_model_strictly(model, state, str(out))
    # w_a_{2t} is block t's q, w_a_{2t+1} its v (SAMed's save order)
    qkv = model.backbone.blocks[1].attn.qkv
    torch.testing.assert_close(qkv.lora_a['q'].weight, lora['w_a_002'])
    torch.testing.assert_close(qkv.lora_b['v'].weight, lora['w_b_003'])
    # the position table resized bilinearly (align_corners False), as build_sam.load_from
    grid = LORA_IMG // TINY_ARCH['patch_size']
    expected = F.interpolate(base['image_encoder.pos_embed'].permute(0, 3, 1, 2), (grid, grid),
                             mode='bilinear', align_corners=False).permute(0, 2, 3, 1)
    torch.testing.assert_close(model.backbone.pos_embed.data, expected)
    # the global block's rel-pos table resized to 2 * grid - 1, the windowed block's kept
    assert model.backbone.blocks[1].attn.rel_pos_h.shape[0] == 2 * grid - 1
    torch.testing.assert_close(model.backbone.blocks[0].attn.rel_pos_h.data,
                               base['image_encoder.blocks.0.attn.rel_pos_h'])
    torch.testing.assert_close(model.decode_head.mask_decoder.mask_tokens.weight.data,
                               lora['mask_decoder.mask_tokens.weight'])
    assert run('samed2mmsam.py', root / 'sam_base.pth', root / 'samed_lora.pth',
               out).returncode != 0  # exists: needs --overwrite


@pytest.mark.parametrize('old,new', [('w_b_001', 'w_b_01'),
                                     ('mask_decoder.iou_token.weight', 'mask_decoder.iou_tok')])
def test_samed_refuses_a_renamed_key_and_names_it(samed_files, tmp_path, old, new):
    root, _, lora = samed_files
    renamed = {(new if k == old else k): v for k, v in lora.items()}
    torch.save(renamed, tmp_path / 'lora.pth')
    out = tmp_path / 'out.pth'
    proc = run('samed2mmsam.py', root / 'sam_base.pth', tmp_path / 'lora.pth', out,
               '--img-size', LORA_IMG)
    assert proc.returncode != 0
    assert repr(old) in proc.stderr or repr(new) in proc.stderr, proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_samed_refuses_decoder_lora_and_wrong_shapes(samed_files, tmp_path):
    root, _, lora = samed_files
    torch.save(dict(lora, sa_a_000=torch.zeros(RANK, 32)), tmp_path / 'samed_s.pth')
    proc = run('samed2mmsam.py', root / 'sam_base.pth', tmp_path / 'samed_s.pth',
               tmp_path / 'a.pth', '--img-size', LORA_IMG)
    assert proc.returncode != 0 and 'SAMed_s' in proc.stderr
    torch.save(dict(lora, w_b_000=torch.zeros(32, RANK + 1)), tmp_path / 'bad.pth')
    proc = run('samed2mmsam.py', root / 'sam_base.pth', tmp_path / 'bad.pth',
               tmp_path / 'b.pth', '--img-size', LORA_IMG)
    assert proc.returncode != 0 and "'w_b_000'" in proc.stderr
    assert not (tmp_path / 'a.pth').exists() and not (tmp_path / 'b.pth').exists()


PSAM_CONFIG = REPO / 'configs' / 'psam' / 'psam_vit-b_lidc_official.py'
PSAM_IMG = 64


@pytest.fixture(scope='module')
def psam_file(tmp_path_factory):
    """A ProbabilisticSAM state dict in the official layout (tiny SAM, nets 32/64, latent 6)."""
    root = tmp_path_factory.mktemp('psam')
    sam = build_reference_sam(img_size=PSAM_IMG)
    gen = torch.Generator().manual_seed(2)
    state = {f'sam.{k}': v for k, v in sam.state_dict().items()}
    state.update({f'fcomb.decoder.{k[len("mask_decoder."):]}': v.clone()
                  for k, v in sam.state_dict().items() if k.startswith('mask_decoder.')})
    width = TINY_ARCH['out_chans']
    for net, chans in (('prior_net', 3), ('posterior_net', 4)):
        for name, shape in ((f'{net}.encoder.0', (32, chans, 3, 3)), (f'{net}.encoder.2',
                            (64, 32, 3, 3)), (f'{net}.fc_mu', (6, 64)),
                            (f'{net}.fc_log_sigma', (6, 64))):
            state[f'{name}.weight'] = torch.randn(shape, generator=gen) * 0.1
            state[f'{name}.bias'] = torch.randn(shape[0], generator=gen) * 0.1
    for name, shape in (('fcomb.z_projector.0', (width, 6)), ('fcomb.z_projector.2',
                                                              (width, width))):
        state[f'{name}.weight'] = torch.randn(shape, generator=gen) * 0.1
        state[f'{name}.bias'] = torch.randn(shape[0], generator=gen) * 0.1
    torch.save(state, root / 'psam.pth')
    return root / 'psam.pth', state


def test_psam_converts_and_loads_strictly_with_the_official_nets(psam_file, tmp_path):
    path, official = psam_file
    out = tmp_path / 'psam_mmsam.pth'
    proc = run('psam2mmsam.py', path, out)
    assert proc.returncode == 0, proc.stderr
    assert 'fcomb.decoder' in proc.stdout
    assert 'config: configs/psam/psam_vit-b_lidc_official.py' in proc.stdout
    cfg = Config.fromfile(str(PSAM_CONFIG))
    sam_widths(cfg.model, tiny_meta_arch(PSAM_IMG), 'reference')
    model = build_model(cfg.model)
    load_into_model_strictly(model, torch.load(out, weights_only=True)['state_dict'], str(out))
    # the official PosteriorEncoder, written out: conv-ReLU-conv-ReLU-mean-Linear, clamp [-5, 5]
    x = torch.rand(2, 4, 16, 16)
    h = F.relu(F.conv2d(x, official['posterior_net.encoder.0.weight'],
                        official['posterior_net.encoder.0.bias'], padding=1))
    h = F.relu(F.conv2d(h, official['posterior_net.encoder.2.weight'],
                        official['posterior_net.encoder.2.bias'], padding=1)).mean((2, 3))
    mu = F.linear(h, official['posterior_net.fc_mu.weight'], official['posterior_net.fc_mu.bias'])
    log_sigma = F.linear(h, official['posterior_net.fc_log_sigma.weight'],
                         official['posterior_net.fc_log_sigma.bias']).clamp(-5, 5)
    ours_mu, ours_log_sigma = model.decode_head.posterior_net(x)
    torch.testing.assert_close(ours_mu, mu)
    torch.testing.assert_close(ours_log_sigma, log_sigma)
    z = torch.randn(3, 6)
    hidden = F.relu(F.linear(z, official['fcomb.z_projector.0.weight'],
                             official['fcomb.z_projector.0.bias']))
    expected = F.linear(hidden, official['fcomb.z_projector.2.weight'],
                        official['fcomb.z_projector.2.bias'])
    torch.testing.assert_close(model.decode_head.latent_to_prompt(z), expected)


@pytest.mark.slow
def test_psam_refuses_renamed_keys_and_a_diverging_decoder_copy(psam_file, tmp_path):
    _, official = psam_file
    renamed = {('prior_net.fc_mean.weight' if k == 'prior_net.fc_mu.weight' else k): v
               for k, v in official.items()}
    torch.save(renamed, tmp_path / 'renamed.pth')
    proc = run('psam2mmsam.py', tmp_path / 'renamed.pth', tmp_path / 'a.pth')
    assert proc.returncode != 0 and "'prior_net.fc_mu.weight'" in proc.stderr, proc.stderr
    renamed = {('sam.mask_decoder.iou_tok' if k == 'sam.mask_decoder.iou_token.weight' else k): v
               for k, v in official.items()}
    torch.save(renamed, tmp_path / 'renamed2.pth')
    proc = run('psam2mmsam.py', tmp_path / 'renamed2.pth', tmp_path / 'b.pth')
    assert proc.returncode != 0 and 'sam.mask_decoder.iou_tok' in proc.stderr, proc.stderr
    diverging = dict(official)
    diverging['fcomb.decoder.iou_token.weight'] = official['sam.mask_decoder.iou_token.weight'] + 1
    torch.save(diverging, tmp_path / 'diverging.pth')
    proc = run('psam2mmsam.py', tmp_path / 'diverging.pth', tmp_path / 'c.pth')
    assert proc.returncode != 0 and "'fcomb.decoder.iou_token.weight'" in proc.stderr
    assert not any((tmp_path / n).exists() for n in ('a.pth', 'b.pth', 'c.pth'))


@pytest.mark.slow
def test_sam_layout_file_converts_for_the_medsam_config_and_names_renamed_keys(tmp_path):
    sam = build_reference_sam()
    torch.save(sam.state_dict(), tmp_path / 'medsam.pth')
    out = tmp_path / 'medsam_mmsam.pth'
    proc = run('sam2mmsam.py', tmp_path / 'medsam.pth', out)
    assert proc.returncode == 0, proc.stderr
    assert 'config: configs/medsam/medsam_vit-b_lidc_official-inference.py' in proc.stdout
    cfg = Config.fromfile(str(REPO / 'configs/medsam/medsam_vit-b_lidc_official-inference.py'))
    sam_widths(cfg.model, tiny_meta_arch(64), 'fused')
    model = build_model(cfg.model)
    load_into_model_strictly(model, torch.load(out, weights_only=True)['state_dict'], str(out))
    torch.testing.assert_close(model.backbone.pos_embed.data, sam.image_encoder.pos_embed.data)
    state = {('image_encoder.blocks.0.norm_1.weight' if k == 'image_encoder.blocks.0.norm1.weight'
              else k): v for k, v in sam.state_dict().items()}
    torch.save(state, tmp_path / 'renamed.pth')
    proc = run('sam2mmsam.py', tmp_path / 'renamed.pth', tmp_path / 'r.pth')
    assert proc.returncode != 0 and 'image_encoder.blocks.0.norm_1.weight' in proc.stderr
    assert not (tmp_path / 'r.pth').exists()


def test_official_files_are_recognised_with_the_converter_to_run(samed_files, psam_file, tmp_path):
    from mmsam.models.converters.detect import official_format_hint
    root, _, _ = samed_files
    assert 'samed2mmsam.py' in official_format_hint(str(root / 'samed_lora.pth'))
    assert 'sam2mmsam.py' in official_format_hint(str(root / 'sam_base.pth'))
    assert 'psam2mmsam.py' in official_format_hint(str(psam_file[0]))
    torch.save(dict(network_weights={}, optimizer_state=None), tmp_path / 'nnunet.pth')
    assert 'masksam2mmsam.py' in official_format_hint(str(tmp_path / 'nnunet.pth'))
    (tmp_path / 'hf').mkdir()
    (tmp_path / 'hf' / 'config.json').write_text('{}')
    assert 'hf_sam2mmsam.py' in official_format_hint(str(tmp_path / 'hf'))
    torch.save(dict(state_dict={'backbone.x': torch.zeros(1)}, meta={}), tmp_path / 'ours.pth')
    assert official_format_hint(str(tmp_path / 'ours.pth')) is None

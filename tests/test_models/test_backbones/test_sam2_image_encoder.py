"""SAM2ImageEncoder against the `sam2` package's own encoder (random weights, official layout)."""
import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose
from hydra.utils import instantiate
from mmengine.config import Config
from sam2.build_sam import build_sam2
from sam2.modeling.backbones.hieradet import Hiera

from mmsam.models import SAM2ImageEncoder
from mmsam.models.adapters.lora import LoRAQKVLinear
from mmsam.models.backbones.sam2_image_encoder import (SAM2_ARCHS, SAM2_TINY_ARCH,
                                                       resolve_sam2_arch)
from mmsam.registry import MODELS

YAML = 'configs/sam2.1/sam2.1_hiera_{}.yaml'
TINY_IMG = 64
# The tiny arch as hydra overrides of the official tiny yaml: sam2 builds it its own way.
TINY_OVERRIDES = [
    '++model.image_encoder.trunk.embed_dim=16', '++model.image_encoder.trunk.num_heads=1',
    '++model.image_encoder.trunk.stages=[1,1,3,1]',
    '++model.image_encoder.trunk.global_att_blocks=[3]',
    '++model.image_encoder.trunk.window_spec=[8,4,6,2]',
    '++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]',
    '++model.image_encoder.neck.d_model=32',
    '++model.image_encoder.neck.position_encoding.num_pos_feats=32',
    '++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]',
]


def _randomise(module, seed):
    """Seeded noise on every weight (sam2 initialises the position tables to zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return module


def _save_official(state, path):
    """Save an encoder's weights as an official SAM 2 file: {'model': {'image_encoder.*'}}."""
    torch.save({'model': {f'image_encoder.{k}': v for k, v in state.items()}}, path)
    return str(path)


@pytest.fixture(scope='module')
def tiny_reference():
    """sam2's ImageEncoder of the tiny arch, built from the official yaml with overrides."""
    cfg = compose(config_name=YAML.format('t'), overrides=TINY_OVERRIDES)
    return _randomise(instantiate(cfg.model.image_encoder), seed=1).eval()


@pytest.fixture(scope='module')
def tiny_checkpoint(tiny_reference, tmp_path_factory):
    path = tmp_path_factory.mktemp('sam2') / 'tiny_sam2.pt'
    return _save_official(tiny_reference.state_dict(), path)


def _tiny_encoder(checkpoint=None, **kwargs):
    encoder = SAM2ImageEncoder(arch=SAM2_TINY_ARCH, img_size=kwargs.pop('img_size', TINY_IMG),
                               checkpoint=checkpoint, **kwargs)
    encoder.init_weights()
    return encoder.eval()


def _assert_equals_sam2(model, encoder, x):
    """FPN levels, vision_features and position encodings against one sam2 forward_image.

    The raw FPN levels are taken from ``model.image_encoder``'s output inside that call (a hook
    copies them before forward_image replaces levels 0 and 1 by the mask decoder's conv_s0 /
    conv_s1 projections, SAM 2's high-res features); those projections of ours are checked too.
    """
    raw = {}
    hook = model.image_encoder.register_forward_hook(
        lambda module, args, output: raw.update(fpn=list(output['backbone_fpn'])))
    with torch.no_grad():
        expected = model.forward_image(x)
        out = encoder(x)
        pos = encoder.position_encodings(out)
        projected = [model.sam_mask_decoder.conv_s0(out[0]),
                     model.sam_mask_decoder.conv_s1(out[1]), out[2]]
    hook.remove()
    assert len(out) == 3 and len(pos) == 3
    pairs = zip(list(out) + projected + list(pos),
                raw['fpn'] + expected['backbone_fpn'] + expected['vision_pos_enc'])
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[-1], expected['vision_features'], atol=1e-5, rtol=0)
    return out


@pytest.mark.parametrize('arch,letter,img_size', [('hiera_t', 't', 256), ('hiera_s', 's', 128)])
def test_official_arch_equals_sam2(arch, letter, img_size, tmp_path):
    """SAM 2.1-tiny / -small built by sam2 (seeded random weights), saved as {'model': sd}."""
    torch.manual_seed(0)
    model = build_sam2(YAML.format(letter), ckpt_path=None, device='cpu')
    _randomise(model.image_encoder, seed=0)
    path = tmp_path / f'sam2.1_{arch}_random.pt'
    torch.save({'model': model.state_dict()}, path)
    encoder = SAM2ImageEncoder(arch=arch, img_size=img_size, checkpoint=str(path))
    encoder.init_weights()
    x = torch.randn(1, 3, img_size, img_size)
    out = _assert_equals_sam2(model, encoder.eval(), x)
    assert [tuple(o.shape) for o in out] == [(1, 256, img_size // s, img_size // s)
                                            for s in (4, 8, 16)]


@pytest.mark.slow
def test_hiera_t_equals_sam2_at_1024(tmp_path):
    torch.manual_seed(0)
    model = build_sam2(YAML.format('t'), ckpt_path=None, device='cpu')
    _randomise(model.image_encoder, seed=0)
    path = tmp_path / 'sam2.1_hiera_tiny_random.pt'
    torch.save({'model': model.state_dict()}, path)
    encoder = SAM2ImageEncoder(arch='hiera_t', img_size=1024, checkpoint=str(path))
    encoder.init_weights()
    out = _assert_equals_sam2(model, encoder.eval(), torch.randn(1, 3, 1024, 1024))
    assert out[-1].shape == (1, 256, 64, 64)


@pytest.mark.parametrize('yaml', [YAML, 'configs/sam2/sam2_hiera_{}.yaml'], ids=['2.1', '2.0'])
@pytest.mark.parametrize('arch,letter', [('hiera_t', 't'), ('hiera_s', 's'), ('hiera_b+', 'b+'),
                                         ('hiera_l', 'l')])
def test_arch_constants_equal_official_yaml(arch, letter, yaml):
    """Every trunk/neck value equals the SAM 2.1 (and SAM 2.0) yaml's, or Hiera's default where
    it sets none: the encoders of both releases are the same."""
    cfg = compose(config_name=yaml.format(letter)).model.image_encoder
    assert cfg.scalp == 1
    defaults = {k: p.default for k, p in inspect.signature(Hiera).parameters.items()}
    hp = resolve_sam2_arch(arch)
    for key in ('embed_dim', 'num_heads', 'stages', 'global_att_blocks', 'window_spec',
                'window_pos_embed_bkg_spatial_size', 'q_pool', 'q_stride', 'dim_mul',
                'head_mul'):
        official = cfg.trunk.get(key, defaults[key])
        official = tuple(official) if not isinstance(official, (int, float)) else official
        assert hp[key] == official, (arch, key)
    assert hp['d_model'] == cfg.neck.d_model == cfg.neck.position_encoding.num_pos_feats
    assert tuple(hp['fpn_top_down_levels']) == tuple(cfg.neck.fpn_top_down_levels)
    assert hp['fpn_interp_model'] == cfg.neck.fpn_interp_model
    assert cfg.neck.position_encoding.temperature == 10000
    assert cfg.neck.position_encoding.normalize and cfg.neck.position_encoding.scale is None


def test_tiny_arch_equals_sam2_built_with_overrides(tiny_reference, tiny_checkpoint):
    encoder = MODELS.build(dict(type='SAM2ImageEncoder', arch=SAM2_TINY_ARCH, img_size=128,
                                checkpoint=tiny_checkpoint))
    encoder.init_weights()
    assert sum(p.numel() for p in encoder.parameters()) == sum(
        p.numel() for p in tiny_reference.parameters())
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        expected = tiny_reference(x)
        out = encoder.eval()(x)
    assert [tuple(o.shape) for o in out] == [(2, 32, 32, 32), (2, 32, 16, 16), (2, 32, 8, 8)]
    for ours, theirs in zip(out, expected['backbone_fpn']):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[-1], expected['vision_features'], atol=1e-5, rtol=0)


def test_encoder_only_state_dict_loads(tiny_reference, tmp_path):
    path = tmp_path / 'encoder_only.pt'
    torch.save(tiny_reference.state_dict(), path)
    encoder = _tiny_encoder(str(path))
    for key, value in tiny_reference.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key


def test_missing_and_unexpected_keys_name_file_and_keys(tiny_reference, tmp_path):
    state = dict(tiny_reference.state_dict())
    del state['trunk.blocks.1.attn.qkv.weight']
    missing = _save_official(state, tmp_path / 'missing.pt')
    with pytest.raises(RuntimeError, match=r'missing\.pt.*missing keys.*blocks\.1\.attn\.qkv'):
        _tiny_encoder(missing)
    state = dict(tiny_reference.state_dict(), **{'trunk.extra.weight': torch.zeros(1)})
    unexpected = _save_official(state, tmp_path / 'unexpected.pt')
    with pytest.raises(RuntimeError, match=r'unexpected\.pt.*unexpected keys.*trunk\.extra'):
        _tiny_encoder(unexpected)
    # The official hiera_t file does not fit the tiny arch: shapes named, arch hint given.
    state = dict(tiny_reference.state_dict())
    state['trunk.pos_embed'] = torch.zeros(1, 16, 7, 7)
    wrong = _save_official(state, tmp_path / 'wrong_shape.pt')
    with pytest.raises(RuntimeError, match=r"wrong_shape\.pt.*trunk\.pos_embed.*config's arch"):
        _tiny_encoder(wrong)


def test_missing_file_names_file_and_download_page(tmp_path):
    path = str(tmp_path / 'sam2.1_hiera_tiny.pt')
    with pytest.raises(FileNotFoundError) as err:
        _tiny_encoder(path)
    for part in (path, 'https://github.com/facebookresearch/sam2',
                 'dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt',
                 'wanglab/MedSAM2'):
        assert part in str(err.value)


def test_no_encoder_keys_and_pickled_objects_rejected(tmp_path):
    path = tmp_path / 'decoder_only.pt'
    torch.save({'model': {'sam_mask_decoder.w': torch.zeros(1)}}, path)
    with pytest.raises(KeyError, match=r'decoder_only\.pt has no .*image_encoder\.\*'):
        _tiny_encoder(str(path))
    # weights_only: a file that would need arbitrary unpickling is refused, not executed.
    path = tmp_path / 'pickled.pt'
    torch.save({'model': {}, 'extra': inspect.Parameter('x', inspect.Parameter.POSITIONAL_ONLY)},
               path)
    with pytest.raises(RuntimeError, match=r'cannot read SAM 2 checkpoint .*pickled\.pt'):
        _tiny_encoder(str(path))


def test_lora_zero_init_keeps_outputs_and_only_lora_trains(tiny_checkpoint):
    plain = _tiny_encoder(tiny_checkpoint)
    lora = _tiny_encoder(tiny_checkpoint, adapter=dict(type='LoRA', rank=2), frozen=True)
    blocks = lora.trunk.blocks
    assert all(isinstance(b.attn.qkv, LoRAQKVLinear) for b in blocks)
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    expected = {f'trunk.blocks.{i}.attn.qkv.lora_{ab}.{t}.weight' for i in range(len(blocks))
                for ab in 'ab' for t in 'qv'}
    assert trainable == expected == set(lora.adapter_param_names)
    x = torch.randn(2, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        for a, b in zip(plain(x), lora(x)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    out = lora(x)
    out[-1].sum().backward()
    assert all(p.grad is None for n, p in lora.named_parameters() if n not in expected)
    assert blocks[0].attn.qkv.lora_b['q'].weight.grad.abs().sum() > 0
    with torch.no_grad():
        blocks[0].attn.qkv.lora_b['v'].weight.normal_()
        assert not torch.allclose(lora(x)[-1], plain(x)[-1])


def test_frozen_without_adapter_trains_nothing():
    frozen = _tiny_encoder()
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen(torch.randn(1, 3, TINY_IMG, TINY_IMG))[-1].requires_grad
    assert all(p.requires_grad for p in _tiny_encoder(frozen=False).parameters())


@pytest.mark.parametrize('adapter', [dict(type='DConvAdapter'), dict(type='DMLPAdapter')])
def test_depth_adapters_zero_init_and_case_isolation(adapter, tiny_checkpoint):
    num_frames, cases = 3, 2
    cfg = dict(type='HieraDepthBlockAdapter', adapter=adapter)
    plain = _tiny_encoder(tiny_checkpoint)
    zero = _tiny_encoder(tiny_checkpoint, num_frames=num_frames,
                         adapter=dict(cfg, adapter=dict(adapter, zero_init=True)))
    x = torch.randn(cases * num_frames, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        for a, b in zip(plain(x), zero(x)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    encoder = _tiny_encoder(tiny_checkpoint, num_frames=num_frames, adapter=cfg)
    assert {n for n, p in encoder.named_parameters() if p.requires_grad} == set(
        encoder.adapter_param_names)
    assert 'depth_embed' in encoder.adapter_param_names
    assert any('space_adapter' in n for n in encoder.adapter_param_names)
    assert any('mlp_adapter' in n for n in encoder.adapter_param_names)
    _randomise(encoder, seed=3)
    changed = x.clone()
    changed[num_frames] += torch.randn_like(changed[num_frames])  # case 1, slice 0
    with torch.no_grad():
        before, after = encoder(x)[-1], encoder(changed)[-1]
        plain_after = plain(changed)[-1] - plain(x)[-1]
    # Case 0 untouched; case 1's other slices change only through the depth adapters.
    torch.testing.assert_close(after[:num_frames], before[:num_frames], atol=0, rtol=0)
    assert (after[num_frames + 1:] - before[num_frames + 1:]).abs().max() > 1e-4
    assert plain_after[num_frames + 1:].abs().max() == 0
    with pytest.raises(ValueError, match='not divisible by num_frames=3'):
        encoder(torch.randn(4, 3, TINY_IMG, TINY_IMG))


def test_sam1_depth_block_adapter_is_refused():
    with pytest.raises(TypeError, match='HieraDepthBlockAdapter'):
        SAM2ImageEncoder(arch=SAM2_TINY_ARCH, img_size=TINY_IMG, num_frames=2,
                         adapter=dict(type='DepthBlockAdapter'))


def test_activation_checkpointing_same_gradients():
    torch.manual_seed(0)
    a = _randomise(_tiny_encoder(frozen=False), seed=4)
    b = _tiny_encoder(frozen=False, activation_checkpointing=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, TINY_IMG, TINY_IMG)
    for enc in (a, b):
        sum(o.square().mean() for o in enc(x)).backward()
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, atol=1e-6, rtol=1e-5, msg=name)


def test_bad_arch_and_sizes_are_named():
    with pytest.raises(ValueError, match=r'q-pooling blocks \[2\]'):
        SAM2ImageEncoder(arch=dict(SAM2_TINY_ARCH, global_att_blocks=(2,)), img_size=TINY_IMG)
    with pytest.raises(KeyError, match='hiera_x'):
        SAM2ImageEncoder(arch='hiera_x')
    with pytest.raises(KeyError, match='unknown keys'):
        SAM2ImageEncoder(arch=dict(SAM2_TINY_ARCH, depth=3))
    with pytest.raises(ValueError, match='img_size=100'):
        SAM2ImageEncoder(arch=SAM2_TINY_ARCH, img_size=100)
    encoder = _tiny_encoder()
    with pytest.raises(ValueError, match=r'\(B, 3, 64, 64\)'):
        encoder(torch.randn(1, 3, 128, 128))
    assert set(SAM2_ARCHS) == {'hiera_t', 'hiera_s', 'hiera_b+', 'hiera_l'}


def test_tiny_base_config_equals_tiny_arch():
    """configs/_base_/models/sam2_hiera-tiny_128.py is SAM2_TINY_ARCH and builds."""
    path = Path(__file__).parents[3] / 'configs/_base_/models/sam2_hiera-tiny_128.py'
    cfg = Config.fromfile(str(path))
    assert {k: tuple(v) if isinstance(v, (list, tuple)) else v
            for k, v in cfg.tiny_hiera_arch.items()} == SAM2_TINY_ARCH
    encoder = MODELS.build(cfg.sam2_hiera_tiny_128_backbone)
    assert all(p.requires_grad for p in encoder.parameters())
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 128, 128))
    assert [tuple(o.shape) for o in out] == [(1, 32, 32, 32), (1, 32, 16, 16), (1, 32, 8, 8)]


@pytest.mark.parametrize('lora_first', [True, False])
def test_lora_and_depth_adapters_compose(lora_first, tiny_checkpoint):
    """ComposeAdapters in either order: LoRA sits inside the depth-adapted blocks' attention."""
    lora = dict(type='LoRA', rank=2)
    depth = dict(type='HieraDepthBlockAdapter', adapter=dict(type='DConvAdapter', zero_init=True))
    adapters = [lora, depth] if lora_first else [depth, lora]
    encoder = _tiny_encoder(tiny_checkpoint, num_frames=2,
                            adapter=dict(type='ComposeAdapters', adapters=adapters))
    names = set(encoder.adapter_param_names)
    assert {n for n, p in encoder.named_parameters() if p.requires_grad} == names
    assert any('.lora_' in n for n in names) and any('space_adapter' in n for n in names)
    assert all(isinstance(b.attn.qkv, LoRAQKVLinear) for b in encoder.trunk.blocks)
    x = torch.randn(4, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x)[-1], _tiny_encoder(tiny_checkpoint)(x)[-1],
                                   atol=1e-6, rtol=0)

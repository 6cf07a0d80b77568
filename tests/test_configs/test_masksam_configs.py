"""MaskSAM configs: parameter counts (worked out by hand for the official geometries),
geometry, splits, nnU-Net's augmentation, data pipelines, missing files, and the Table 4
ablations differing from the main ACDC config only where intended."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from mmengine.config import Config

from mmsam.registry import DATASETS, MODELS

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'configs' / 'masksam'
MAIN_ACDC = CFG / 'masksam_vit-b_acdc.py'
MASKSAM_CONFIGS = sorted(CFG.glob('**/*.py'))
# the real-data configs (the tiny synthetic one has its own data and schedule)
REAL_CONFIGS = [p for p in MASKSAM_CONFIGS if 'synthetic' not in p.stem]
ABLATIONS = {int(p.stem[-1]): p for p in (CFG / 'ablations').glob('masksam_vit-b_acdc_b*.py')}


def load_count_params():
    return load_script('tools/analysis_tools/count_params.py')


def build(path, meta=True):
    """The config's model; on the meta device (no memory, instant) unless ``meta=False``."""
    cfg = Config.fromfile(path)
    with torch.device('meta') if meta else torch.device('cpu'):
        return MODELS.build(cfg.model)


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# MaskSAM's per-module parameter counts, worked by hand: DConv(D) = D^2/2 + D + 31 D/4 (fc1, fc2,
# depth-wise 3^3 conv with bias, channel LN); DMLP(T) at D = 256 = 33,088 + 8 T^2 + 5 T.
def dconv(d):
    return d * d // 2 + d + 31 * d // 4


def dmlp256(t):
    return 33088 + 8 * t * t + 5 * t


def decoder_adapters(t):
    return 7 * dmlp256(t) + 2 * dconv(256)  # 2 layers x (3 token sites + image) + final t2i


def test_there_are_all_masksam_configs():
    names = {p.name for p in MASKSAM_CONFIGS}
    expected = {'masksam_vit-h_synapse.py', 'masksam_vit-b_synapse.py', 'masksam_vit-b_acdc.py',
                'masksam_vit-b_amos_fold0.py'}
    expected |= {f'masksam_vit-h_amos_fold{k}.py' for k in range(5)}
    expected |= {f'masksam_vit-b_acdc_b{b}.py' for b in range(1, 9)}
    assert expected <= names
    assert sorted(ABLATIONS) == list(range(1, 9))


def test_vit_b_synapse_has_the_worked_out_parameter_count(capsys):
    """Worked out by hand: 18,843,937 trainable; 109,581,137 in all with mmsam's resized tables."""
    groups = load_count_params().main([str(CFG / 'masksam_vit-b_synapse.py')])
    assert 'encoder adapters' in capsys.readouterr().out
    train = {k: t for k, (_, t) in groups.items()}
    assert dconv(768) == 301632 and decoder_adapters(26) == 340398
    assert train['encoder adapters'] == 24 * 301632 == 7239168
    assert train['depth embeddings'] == 26 * 768 + 26 * 256 * 16 * 16 == 19968 + 1703936
    assert train['decoder adapters'] == 340398
    rest = ('prompt generator', 'classifier', 'stem', 'refine')
    assert sum(train[k] for k in rest) == 9540467
    assert train['classifier'] == 256 + 256 * 10 + 10  # cls_token, cls_embed to C + 1 = 10
    assert train['SAM'] == 0  # frozen
    assert sum(train.values()) == 18843937
    assert sum(t for t, _ in groups.values()) == 109581137
    assert 'other' not in groups


@pytest.mark.slow
def test_vit_h_synapse_and_amos_have_the_worked_out_parameter_counts():
    count = load_count_params().count_masksam
    groups = count(build(CFG / 'masksam_vit-h_synapse.py'))
    assert groups['encoder adapters'][1] == 64 * dconv(1280) == 53145600
    assert groups['depth embeddings'][1] == 26 * 1280 + 1703936
    assert groups['SAM'] == (636113968, 0)
    assert sum(t for _, t in groups.values()) == 65550113
    assert sum(t for t, _ in groups.values()) == 701664081
    groups = count(build(CFG / 'masksam_vit-h_amos_fold0.py'))
    assert groups['decoder adapters'][1] == decoder_adapters(9) == 7 * 33781 + 2 * 35008
    assert groups['depth embeddings'][1] == 9 * 1280 + 9 * 256 * 32 * 32 == 11520 + 2359296
    assert sum(t for _, t in groups.values()) == 66151597
    assert sum(t for t, _ in groups.values()) == 703269085


@pytest.mark.parametrize('path', REAL_CONFIGS, ids=[p.stem for p in REAL_CONFIGS])
def test_geometry_is_consistent(path):
    """T, Q and the input sizes agree between the data pipeline and every model part."""
    cfg = Config.fromfile(path)
    m, train = cfg.model, cfg.train_dataloader
    crop = next(t for t in train.dataset.pipeline if t.type == 'RandomPatchCrop3D')
    depth, height, width = crop.patch_size
    assert height == width
    assert m.backbone.num_frames == m.neck.num_frames == m.decode_head.num_frames == depth
    assert m.neck.num_queries == m.decode_head.num_queries >= m.decode_head.num_classes
    upsample = m.stem.get('upsample', 1)
    assert m.backbone.img_size == m.decode_head.prompt_encoder.img_size == height * upsample
    assert m.neck.input_size == height
    assert train.batch_size == 2 and train.dataset.samples_per_epoch == 250 * 2
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.batch_size == 1 and loader.dataset.test_mode
        assert loader.dataset.pipeline[0] == dict(type='LoadVolume', native_label=True)
    assert cfg.test_evaluator == dict(type='VolumeDiceHD95Metric', convention='nnunet',
                                      hd95=False, also_log_convention='transunet')
    # the Runner fills the poly schedule's end with train_cfg.max_epochs
    assert 'end' not in cfg.param_scheduler[0]
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval
    model = build(path)  # the segmentor checks test_cfg's window against num_frames itself
    assert model.test_cfg['patch_size'] == (depth, height, width)


def test_the_three_datasets_augment_as_nnunet_v2():
    """Synapse, ACDC and AMOS train with one augmentation list, whose steps and probabilities
    are nnU-Net v2's (``nnUNetTrainer.get_training_transforms`` of the installed nnunetv2,
    read here): spatial (rotation and scaling 0.2 each, rotation in +-180 degrees), noise,
    blur, brightness, contrast, low resolution, inverted then plain gamma, mirroring."""
    trainer = pytest.importorskip('nnunetv2.training.nnUNetTrainer.nnUNetTrainer')
    cfgs = [Config.fromfile(p) for p in (CFG / 'masksam_vit-b_synapse.py', MAIN_ACDC,
                                          CFG / 'masksam_vit-h_amos_fold0.py')]
    augs = [c.train_dataloader.dataset.pipeline[3:-1] for c in cfgs]
    assert augs[0] == augs[1] == augs[2]
    nnunet = trainer.nnUNetTrainer.get_training_transforms(
        patch_size=(16, 32, 32), rotation_for_DA=(-np.pi, np.pi), deep_supervision_scales=None,
        mirror_axes=(0, 1, 2), do_dummy_2d_data_aug=False).transforms
    spatial, *random_steps = [t for t in nnunet if type(t).__name__ != 'RemoveLabelTansform']
    mirror = random_steps.pop()
    assert (type(spatial).__name__, type(mirror).__name__) == ('SpatialTransform',
                                                               'MirrorTransform')
    assert augs[0][0].type == 'RandomSpatial3D'
    assert augs[0][0].rotate_prob == spatial.p_rotation and \
        augs[0][0].scale_prob == spatial.p_scaling
    assert tuple(np.deg2rad(augs[0][0].rotate_range)) == pytest.approx(spatial.rotation)
    names = dict(GaussianNoiseTransform='RandomGaussianNoise3D',
                 GaussianBlurTransform='RandomGaussianBlur3D',
                 MultiplicativeBrightnessTransform='RandomBrightness3D',
                 ContrastTransform='RandomContrast3D',
                 SimulateLowResolutionTransform='RandomLowResolution3D',
                 GammaTransform='RandomGamma3D')
    assert [(t.type, t.prob) for t in augs[0][1:-1]] == [
        (names[type(r.transform).__name__], r.apply_probability) for r in random_steps]
    gammas = [r.transform for r in random_steps if type(r.transform).__name__ == 'GammaTransform']
    assert [t.invert_image for t in augs[0][6:8]] == [g.p_invert_image == 1 for g in gammas]
    assert augs[0][-1].type == 'RandomMirror3D' and tuple(mirror.allowed_axes) == (0, 1, 2)


def _fake_root(root, dataset, shape, num_classes, ct):
    """A converted data root with one training and one test case of ``shape``."""
    from mmsam.datasets.io.data_root import write_meta, write_split
    from mmsam.datasets.io.npz import save_volume
    rng = np.random.default_rng(0)
    label = np.zeros(shape, np.uint8)
    label[:, 4:12, 4:12] = 1
    label[:, 16:20, 16:24] = num_classes - 1
    image = (rng.normal(size=shape) * 100 if ct else rng.normal(size=shape)).astype(np.float32)
    for folder in ('train_volumes', 'test_volumes'):
        save_volume(str(root / folder / 'case0.npz'), image, label)
    for split in ('train_volumes', 'test', 'val', 'fold0_train', 'fold0_val'):
        write_split(str(root), split, ['case0'])
    meta = dict(classes=list(dataset.METAINFO['classes']), intensity='hu' if ct else 'zscore')
    if ct:
        meta['ct_foreground'] = dict(mean=10.0, std=90.0, percentile_00_5=-250.0,
                                     percentile_99_5=250.0)
    write_meta(str(root), meta)


@pytest.mark.parametrize('name,ct', [('masksam_vit-b_synapse.py', True),
                                     ('masksam_vit-b_acdc.py', False),
                                     ('masksam_vit-b_amos_fold0.py', True)])
def test_pipelines_give_patches_and_whole_volumes(tmp_path, name, ct):
    cfg = Config.fromfile(CFG / name)
    dataset_cls = DATASETS.get(cfg.train_dataloader.dataset.type)
    num_classes = len(dataset_cls.METAINFO['classes'])
    shape = (6, 24, 28)  # smaller than every patch: padded
    _fake_root(tmp_path, dataset_cls, shape, num_classes, ct)
    patch = tuple(cfg.train_dataloader.dataset.pipeline[2].patch_size)
    np.random.seed(0)
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(tmp_path)))
    assert len(train) == 500
    item = train[0]
    assert item['inputs'].shape == (1, ) + patch and item['inputs'].dtype == torch.float32
    assert item['data_samples'].gt_sem_seg.data.shape == patch
    test = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(tmp_path)))
    item = test[0]
    assert len(test) == 1 and item['inputs'].shape == (1, ) + shape
    assert item['data_samples'].gt_sem_seg.data.shape == shape
    assert item['data_samples'].metainfo['is_volume']


def test_missing_data_and_weights_name_the_file_and_the_remedy(tmp_path):
    """What `python tools/train.py configs/masksam/masksam_vit-b_synapse.py` meets first
    without data (the Runner builds the dataloader before loading weights), then without
    the SAM checkpoint."""
    cfg = Config.fromfile(CFG / 'masksam_vit-b_synapse.py')
    dataset = dict(cfg.train_dataloader.dataset, data_root=str(tmp_path / 'synapse_3d'))
    hint = (r'meta\.json not found.*dataset_converters/synapse\.py SRC .*--train-volumes'
            r'.*--intensity hu')
    with pytest.raises(FileNotFoundError, match=hint):
        DATASETS.build(dataset)
    missing = str(tmp_path / 'sam_vit_b_01ec64.pth')
    cfg.merge_from_dict({'model.backbone.checkpoint': missing,
                         'model.decode_head.prompt_encoder.checkpoint': missing,
                         'model.decode_head.mask_decoder.checkpoint': missing})
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match=r'sam_vit_b_01ec64\.pth not found.*Checkpoints'):
        model.init_weights()


@pytest.mark.parametrize('fold', range(5))
def test_amos_folds_change_the_splits(fold):
    cfg = Config.fromfile(CFG / f'masksam_vit-h_amos_fold{fold}.py')
    base = Config.fromfile(CFG / 'masksam_vit-h_amos_fold0.py')
    assert cfg.fold == fold
    assert cfg.train_dataloader.dataset.split == f'fold{fold}_train'
    assert cfg.val_dataloader.dataset.split == cfg.test_dataloader.dataset.split == \
        f'fold{fold}_val'
    assert cfg.model == base.model and cfg.optim_wrapper == base.optim_wrapper


def cost_weights(path):
    """The 7 matching-cost weights of the config's built criterion, in the assigner's order:
    class, mask CE, mask Dice, aux CE, aux Dice, box L1, GIoU."""
    crit = MODELS.build(dict(Config.fromfile(path).model.decode_head.loss_decode, num_classes=4))
    return [(c.cost if hasattr(c, 'cost') else c).weight for c in crit.assigner.match_costs]


def test_amos_mask_weights_in_losses_and_costs():
    """AMOS: final-mask BCE and Dice at 1.2 (not 1.5) in the losses and the matching alike."""
    for name in ('masksam_vit-h_amos_fold0.py', 'masksam_vit-b_amos_fold0.py'):
        crit = Config.fromfile(CFG / name).model.decode_head.loss_decode.to_dict()
        assert crit['num_points'] == 131072
        assert crit['loss_weights'] == dict(mask=1.2, dice=1.2)
        assert cost_weights(CFG / name) == [0.2, 1.2, 1.2, 0.5, 0.5, 0.5, 0.2]
    assert cost_weights(MAIN_ACDC) == [0.2, 1.5, 1.5, 0.5, 0.5, 0.5, 0.2]


def _leaves(node, path=()):
    """Flatten nested dicts / lists into {path tuple: leaf}."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_leaves(v, path + (k, )))
        return out
    if isinstance(node, (list, tuple)) and any(isinstance(v, (dict, list)) for v in node):
        out = {}
        for i, v in enumerate(node):
            out.update(_leaves(v, path + (i, )))
        return out
    return {path: node}


HELPERS = {'position'}  # config-file variables the Runner ignores


def _diff(path):
    """{leaf path: (main value, ablation value)} over the runner's settings."""
    main = Config.fromfile(MAIN_ACDC).to_dict()
    other = Config.fromfile(path).to_dict()
    assert set(other) - set(main) <= HELPERS
    main, other = _leaves(main), _leaves({k: v for k, v in other.items() if k not in HELPERS})
    return {k: (main.get(k), other.get(k)) for k in set(main) | set(other)
            if main.get(k, KeyError) != other.get(k, KeyError)}


ENC = ('model', 'backbone', 'adapter', 'adapter')
DEC = ('model', 'decode_head', 'decoder_adapter')
HEAD = ('model', 'decode_head')
CRIT = HEAD + ('loss_decode', )
VANILLA = {ENC + ('type', ): ('DConvAdapter', 'BottleneckAdapter'),
           DEC + ('token_adapter', 'type'): ('DMLPAdapter', 'BottleneckAdapter'),
           DEC + ('image_adapter', 'type'): ('DConvAdapter', 'BottleneckAdapter')}
NO_DEPTH_EMBED = {HEAD + ('depth_pos_embed', ): (True, False),
                  ('model', 'backbone', 'depth_embed'): (None, False)}
B4 = {**VANILLA, **NO_DEPTH_EMBED}
B8 = {ENC + ('type', ): ('DConvAdapter', 'DMLPAdapter'),
      DEC + ('image_adapter', 'type'): ('DConvAdapter', 'DMLPAdapter')}


def _positions(position):
    return {**B8, **{key + ('position', ): (None, position)
                     for key in (ENC, DEC + ('token_adapter', ), DEC + ('image_adapter', ))}}


EXPECTED = {
    8: B8,
    7: _positions('before_down'),
    6: _positions('after_up'),
    5: VANILLA,
    4: B4,
    3: {**B4, HEAD + ('prompt_mode', ): ('mask_avg_box', 'mask_box')},
    2: {**B4, HEAD + ('prompt_mode', ): ('mask_avg_box', 'box'),
        CRIT + ('loss_weights', 'aux_mask'): (None, 0.0),
        CRIT + ('loss_weights', 'aux_dice'): (None, 0.0)},
    1: {**B4, HEAD + ('prompt_mode', ): ('mask_avg_box', 'mask'),
        CRIT + ('loss_weights', 'aux_bbox'): (None, 0.0),
        CRIT + ('loss_weights', 'aux_giou'): (None, 0.0)},
}


@pytest.mark.parametrize('row', range(1, 9))
def test_ablation_differs_from_the_main_acdc_config_only_as_table_4_says(row):
    path = ABLATIONS[row]
    assert path.read_text().startswith(f'# Ablation B{row} of MaskSAM Table 4 (ACDC, ')
    assert _diff(path) == EXPECTED[row]


def test_b1_b2_switch_off_the_unused_prompt_head_in_losses_and_matching():
    """B1 has no learned box, B2 no mask prompt: those heads' losses and costs weigh 0."""
    assert cost_weights(ABLATIONS[1]) == [0.2, 1.5, 1.5, 0.5, 0.5, 0.0, 0.0]
    assert cost_weights(ABLATIONS[2]) == [0.2, 1.5, 1.5, 0.0, 0.0, 0.5, 0.2]


def test_ablation_models():
    """Built models: adapter types, depth embeddings and parameter differences by hand."""
    models = {row: build(path) for row, path in ABLATIONS.items()}
    models[9] = build(MAIN_ACDC)
    counts = {row: trainable(m) for row, m in models.items()}
    # B5 - B4: the decoder depth PE (T, 256, g, g) with T = 4, g = 64, and the encoder depth
    # embedding (1, T, 1, 1, 768)
    assert counts[5] - counts[4] == 4 * 256 * 64 * 64 + 4 * 768
    # B8 - B5: one depth MLP (4 -> 16 -> 4) in each of 12 x 2 encoder + 9 decoder adapters
    assert counts[8] - counts[5] == (12 * 2 + 9) * (4 * 16 + 16 + 16 * 4 + 4)
    assert counts[6] == counts[7] == counts[8]
    assert counts[1] == counts[2] == counts[3] == counts[4]
    # B9 - B8: DConv instead of DMLP on the 24 encoder and 2 decoder image adapters
    dmlp = lambda d: 2 * d * (d // 4) + d + d // 4 + 148  # noqa: E731
    assert counts[9] - counts[8] == 24 * (dconv(768) - dmlp(768)) + 2 * (dconv(256) - dmlp(256))
    for row, model in models.items():
        block = model.backbone.blocks[0]
        dec = model.decode_head.decoder_adapter
        encoder = {type(block.space_adapter).__name__, type(block.mlp_adapter).__name__}
        tokens = {type(dec.layers[1][site]).__name__ for site in ('self_attn', 'cross_t2i', 'mlp')}
        tokens.add(type(dec.final_t2i).__name__)
        image = type(dec.layers[0]['cross_i2t']).__name__
        depth_aware = 'DConvAdapter' if row == 9 else 'DMLPAdapter'
        assert encoder == {'BottleneckAdapter' if row <= 5 else depth_aware}
        assert image == ('BottleneckAdapter' if row <= 5 else depth_aware)
        assert tokens == {'BottleneckAdapter' if row <= 5 else 'DMLPAdapter'}
        assert (model.decode_head.depth_pe is None) == (row <= 4)
        assert model.decode_head.refine is None
    assert models[6].backbone.blocks[3].mlp_adapter.position == 'after_up'
    assert models[7].decode_head.decoder_adapter.layers[0]['cross_i2t'].position == 'before_down'
    assert models[8].decode_head.decoder_adapter.final_t2i.position == 'middle'


def test_b1_to_b4_have_no_depth_embeddings():
    """Table 4: DPosEmbed (encoder depth embedding and decoder depth PE) enters at B5."""
    for row in (1, 4):
        model = build(ABLATIONS[row], meta=False)
        assert model.backbone.depth_embed is None and model.decode_head.depth_pe is None
        assert 'depth_embed' not in model.backbone.adapter_param_names
    model = build(ABLATIONS[5], meta=False)
    assert model.backbone.depth_embed.shape == (1, 4, 1, 1, 768)
    assert model.decode_head.depth_pe is not None


def test_vit_b_acdc_has_the_official_network_count():
    """The official ACDC network: the x4 stem of MaskSAM_ACDC (33,945) and one kernel for the
    generator's last three levels (they share one skip module and, officially, one plan kernel):
    21,406,234 trainable, the ~21.4M worked out by hand (3x3x3 kernels)."""
    groups = load_count_params().count_masksam(build(MAIN_ACDC))
    train = {k: t for k, (_, t) in groups.items()}
    assert train['stem'] == 33945
    assert train['encoder adapters'] == 24 * dconv(768)
    assert train['depth embeddings'] == 4 * 768 + 4 * 256 * 64 * 64
    assert train['decoder adapters'] == 7 * dmlp256(4) + 2 * dconv(256) == 302668
    assert train['refine'] == 0 and train['SAM'] == 0
    assert sum(train.values()) == 21406234
    assert sum(t for t, _ in groups.values()) == 115141706
    cfg = Config.fromfile(MAIN_ACDC)
    assert len(set(map(tuple, cfg.model.neck.kernel_sizes[2:]))) == 1


@pytest.mark.parametrize('path', REAL_CONFIGS, ids=[p.stem for p in REAL_CONFIGS])
def test_paper_table_configs_use_the_official_switches(path):
    """The official code path (bxie9/MaskSAM): the patch in the top-left of SAM's 1024 frame,
    windowed blocks that pad before norm1 and adapt the windows, boxes floored on the patch;
    only the *_mmsam-reading config keeps mmsam's readings."""
    m = Config.fromfile(path).model
    official = 'mmsam-reading' not in path.stem
    assert (m.backbone.pos_embed_resize == 'top_left') == official
    assert (m.backbone.adapter.norm_after_pad is True) == official
    assert (m.backbone.adapter.space_adapter_on == 'windows') == official
    pe = m.decode_head.prompt_encoder
    assert pe.type == 'MaskSAMPromptEncoder'
    assert (pe.canvas_size == 1024) == official
    assert (m.decode_head.box_pixel_grid == 'patch') == official
    assert (m.decode_head.loss_decode.aux_mask_input == 'probs') == official

"""Every decode head on every encoder adapter: one training step and one prediction each.

Each head's model comes from its tiny synthetic config (what users run), shrunk to the tests'
tiny ViT, with the adapter swapped in. The DConv column feeds the 2D segmentor a batch of
B * T slices, b-major, as ``VolumeSAMSegmentor`` does after its stem.

The SAM 2 rows put the same configs on a tiny Hiera (``SAM2ImageEncoder``) with SAM 2's prompt
encoder and mask decoder (``SAM2PromptEncoder`` / ``SAM2MaskDecoder``): the config change a
user makes. A head that cannot run on SAM 2 has a row asserting the error that says why.
"""
import copy
from functools import lru_cache
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from conftest import TINY_ARCH, TINY_IMG
from mmsam.models.backbones.sam2_image_encoder import SAM2_TINY_ARCH
from mmsam.registry import MODELS

CONFIGS = Path(__file__).parents[2] / 'configs'
# head -> (its tiny synthetic config, the kind of data it trains on)
HEADS = {
    'SAMedHead': ('samed/samed_vit-tiny_synthetic-abdomen.py', 'semantic'),
    'HSAMHead': ('hsam/hsam_vit-tiny_synthetic-abdomen.py', 'semantic'),
    'MedSAMHead': ('medsam/medsam_vit-tiny_synthetic-lesion.py', 'box'),
    'SAMMCLHead': ('sam_mcl/sam-mcl_vit-tiny_synthetic-lesion.py', 'box'),
    'SeqSAMHead': ('seqsam/seqsam_vit-tiny_synthetic-lesion.py', 'box'),
    'PSAMHead': ('psam/psam_vit-tiny_synthetic-lesion.py', 'box'),
}
NUM_FRAMES = 2  # T of the DConv column
ADAPTERS = {
    'none': None,
    'LoRA': dict(type='LoRA', rank=4),
    'DConv': dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter')),
}
WIDTH = TINY_ARCH['out_chans']
SAM2_ADAPTERS = {  # the same columns on Hiera (its depth adapter wraps Hiera's blocks)
    'none': None,
    'LoRA': dict(type='LoRA', rank=4),
    'DConv': dict(type='HieraDepthBlockAdapter', adapter=dict(type='DConvAdapter')),
}
# heads that cannot run on SAM 2: (config, the error's message)
SAM2_UNSUPPORTED = {
    'MaskSAMHead': ('masksam/masksam_vit-tiny_synthetic-abdomen-3d.py',
                    'MaskSAMHead runs on SAM 1 only.*MaskSAMPromptGenerator'),
}
SEMANTIC_ORI = (48, 48)  # loaded image size; the network input is TINY_IMG
BOX_ORI = (40, 40)
NUM_ANNOTATORS = 4


@lru_cache(maxsize=None)
def _load(config):
    return Config.fromfile(str(CONFIGS / config))


def tiny_model_cfg(head, adapter):
    """The head's config model on the tests' tiny ViT with ``adapter`` in the encoder.

    With an adapter the encoder is frozen (only the adapter trains); without one the config's
    own ``frozen`` is kept (from scratch: False; fine-tuning the tiny MedSAM: True).
    """
    cfg = _load(HEADS[head][0])
    model = copy.deepcopy(cfg.model)
    assert model.decode_head.type == head, f'{HEADS[head][0]} does not use {head}'
    model.data_preprocessor.size = (TINY_IMG, TINY_IMG)
    backbone = model.backbone
    backbone.update(arch=dict(TINY_ARCH), img_size=TINY_IMG, checkpoint=None,
                    adapter=copy.deepcopy(ADAPTERS[adapter]))
    if ADAPTERS[adapter] is not None:
        backbone.frozen = True
    if adapter == 'DConv':
        backbone.num_frames = NUM_FRAMES
    model.decode_head.prompt_encoder.update(embed_dim=WIDTH, img_size=TINY_IMG,
                                            patch_size=TINY_ARCH['patch_size'], checkpoint=None)
    model.decode_head.mask_decoder.update(transformer_dim=WIDTH, transformer_mlp_dim=64,
                                          transformer_num_heads=2, iou_head_hidden_dim=32,
                                          checkpoint=None)
    return model, cfg.optim_wrapper


def on_sam2(model, adapter=None):
    """``model`` (a head's config model) moved onto the tests' tiny SAM 2: the backbone, prompt
    encoder and mask decoder configs replaced, as a user's SAM 2 config does."""
    if 'size' in model.data_preprocessor:
        model.data_preprocessor.size = (TINY_IMG, TINY_IMG)
    model.backbone = dict(type='SAM2ImageEncoder', arch=dict(SAM2_TINY_ARCH), img_size=TINY_IMG,
                          checkpoint=None, frozen=model.backbone.get('frozen', False),
                          adapter=copy.deepcopy(adapter))
    width = SAM2_TINY_ARCH['d_model']
    model.decode_head.prompt_encoder = dict(type='SAM2PromptEncoder', embed_dim=width,
                                            img_size=TINY_IMG, checkpoint=None)
    model.decode_head.mask_decoder = dict(type='SAM2MaskDecoder', transformer_dim=width,
                                          transformer_mlp_dim=64, transformer_num_heads=2,
                                          iou_head_hidden_dim=32, checkpoint=None)
    return model


def tiny_sam2_model_cfg(head, adapter):
    """The head's config model on the tests' tiny SAM 2 (Hiera + SAM 2's decoder path)."""
    cfg = _load(HEADS[head][0])
    model = on_sam2(copy.deepcopy(cfg.model), SAM2_ADAPTERS[adapter])
    assert model.decode_head.type == head, f'{HEADS[head][0]} does not use {head}'
    if SAM2_ADAPTERS[adapter] is not None:
        model.backbone['frozen'] = True
    if adapter == 'DConv':
        model.backbone['num_frames'] = NUM_FRAMES
    return model, cfg.optim_wrapper


def _box(i):
    return [3. + 2 * i, 4. + i, 25. + i, 30. - i]


def make_batch(kind, batch):
    """Raw (pre-preprocessor) inputs and data samples as the kind's packing transform gives."""
    inputs, samples = [], []
    for i in range(batch):
        inputs.append(torch.randint(0, 256, (3, TINY_IMG, TINY_IMG)).float())
        sample = SegDataSample()
        ori = SEMANTIC_ORI if kind == 'semantic' else BOX_ORI
        meta = dict(img_shape=(TINY_IMG, TINY_IMG), ori_shape=ori, img_path=f'img{i}.npz')
        if kind == 'semantic':
            label = torch.randint(0, 9, (1, TINY_IMG, TINY_IMG))
        else:
            # readers' masks at the loaded size, the box drawn around reader 0 (in its pixels)
            x0, y0, x1, y1 = (int(v) for v in _box(i))
            annotations = torch.zeros(NUM_ANNOTATORS, *ori, dtype=torch.uint8)
            for k in range(NUM_ANNOTATORS):
                annotations[k, y0 + k:y1 - k, x0:x1 - k] = 1
            sample.gt_annotations = PixelData(data=annotations)
            meta['prompt_box'] = _box(i)
            # gt_sem_seg is resized with the image (Resize's seg_fields), as in the pipeline
            label = F.interpolate(annotations[None, :1].float(), size=(TINY_IMG, TINY_IMG),
                                  mode='nearest')[0].long()
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(meta)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _grad_norm(params):
    return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)


@pytest.mark.parametrize('adapter', list(ADAPTERS))
@pytest.mark.parametrize('head', list(HEADS))
def test_head_on_adapter_trains_one_step_and_predicts(head, adapter):
    train_one_step_and_predict(head, adapter, *tiny_model_cfg(head, adapter))


@pytest.mark.parametrize('adapter', list(SAM2_ADAPTERS))
@pytest.mark.parametrize('head', list(HEADS))
def test_head_on_sam2_trains_one_step_and_predicts(head, adapter):
    model = train_one_step_and_predict(head, adapter, *tiny_sam2_model_cfg(head, adapter))
    assert type(model.backbone).__name__ == 'SAM2ImageEncoder'
    assert type(model.decode_head.mask_decoder).__name__ == 'SAM2MaskDecoder'


@pytest.mark.parametrize('head', list(SAM2_UNSUPPORTED))
def test_head_that_cannot_run_on_sam2_says_why(head):
    config, message = SAM2_UNSUPPORTED[head]
    model = on_sam2(copy.deepcopy(_load(config).model))
    assert model.decode_head.type == head
    with pytest.raises(ValueError, match=message):
        MODELS.build(model)


def train_one_step_and_predict(head, adapter, model_cfg, optim_cfg):
    """Build, one optimiser step (checking where gradients land), one prediction."""
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    encoder = model.backbone
    kind = HEADS[head][1]
    # DConv: 2 cases of T slices, b-major; otherwise 2 images
    batch = 2 * NUM_FRAMES if adapter == 'DConv' else 2
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))

    data = model.data_preprocessor(make_batch(kind, batch), training=True)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss) and loss.requires_grad
    optim_wrapper.backward(loss)

    # the loss reaches SAM's mask decoder
    assert _grad_norm(model.decode_head.mask_decoder.parameters()) > 0
    named = dict(encoder.named_parameters())
    adapter_names = set(encoder.adapter_param_names)
    if adapter != 'none':
        assert adapter_names, 'the adapter added no parameters'
    if encoder.frozen:
        with_grad = {n for n, p in named.items() if p.grad is not None}
        assert with_grad == adapter_names, (
            f'frozen encoder: gradients on {sorted(with_grad - adapter_names)[:5]}, none on '
            f'{sorted(adapter_names - with_grad)[:5]}')
        if adapter_names:
            assert _grad_norm(named[n] for n in adapter_names) > 0
            assert all(torch.isfinite(named[n].grad).all() for n in adapter_names)
    else:
        missing = [n for n, p in named.items() if p.grad is None]
        assert not missing, f'trainable encoder without gradient: {missing[:5]}'

    before = {n: p.detach().clone() for n, p in named.items()}
    optim_wrapper.step()
    optim_wrapper.zero_grad()
    changed = {n for n, p in named.items() if not torch.equal(p, before[n])}
    if encoder.frozen:
        assert changed <= adapter_names, f'frozen weights moved: {sorted(changed)[:5]}'
        assert bool(changed) == bool(adapter_names)
    else:
        assert changed

    model.eval()
    data = model.data_preprocessor(make_batch(kind, batch), training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == batch
    ori = SEMANTIC_ORI if kind == 'semantic' else BOX_ORI
    for result in results:
        pred = result.pred_sem_seg.data
        assert pred.shape == (1, *ori)
        if kind == 'semantic':
            assert result.seg_logits.data.shape == (9, *ori)
            assert 0 <= int(pred.min()) and int(pred.max()) < 9
        else:
            hypotheses = result.pred_hypotheses.data
            expected_m = (model.test_cfg.get('num_hypotheses')
                          or model.decode_head.num_hypotheses)
            assert hypotheses.shape == (expected_m, *ori)
            assert set(pred.unique().tolist()) <= {0, 1}
    if adapter == 'DConv':
        check_slices_mix_only_within_a_case(model, data)
    return model


def _logits(model, inputs, samples):
    torch.manual_seed(1)  # the same latent samples for PSAMHead on every call
    with torch.no_grad():
        return model.encode_decode(inputs, samples)


def check_slices_mix_only_within_a_case(model, data):
    """Changing case 1 leaves case 0's logits alone; changing slice 1 of case 0 moves slice 0."""
    inputs, samples = data['inputs'], data['data_samples']
    ref = _logits(model, inputs, samples)
    other_case = inputs.clone()
    other_case[NUM_FRAMES:] = other_case[NUM_FRAMES:].flip(-1)
    torch.testing.assert_close(_logits(model, other_case, samples)[:NUM_FRAMES],
                               ref[:NUM_FRAMES], atol=1e-5, rtol=1e-5)
    same_case = inputs.clone()
    same_case[1] = same_case[1].flip(-1)
    assert (_logits(model, same_case, samples)[0] - ref[0]).abs().max() > 1e-6


def test_dconv_encoder_frozen_trains_only_adapters_and_depth_embed():
    """Trainable parameters are named by pattern and counted from standalone DConvAdapters."""
    torch.manual_seed(0)
    encoder = MODELS.build(dict(
        type='SAMImageEncoder', arch=TINY_ARCH, img_size=TINY_IMG, frozen=True,
        num_frames=NUM_FRAMES, checkpoint=None, adapter=ADAPTERS['DConv']))
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    expected = {'depth_embed'} | {
        n for n, _ in encoder.named_parameters()
        if n.split('.')[2:3] in (['space_adapter'], ['mlp_adapter'])}
    assert trainable == expected
    one = MODELS.build(dict(type='DConvAdapter', embed_dims=TINY_ARCH['embed_dim'],
                            num_frames=NUM_FRAMES))
    per_adapter = sum(p.numel() for p in one.parameters())
    num_trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    assert num_trainable == (TINY_ARCH['depth'] * 2 * per_adapter
                             + NUM_FRAMES * TINY_ARCH['embed_dim'])
    # and the gradient lands exactly there
    out = encoder(torch.randn(2 * NUM_FRAMES, 3, TINY_IMG, TINY_IMG))[-1]
    out.square().mean().backward()
    with_grad = {n for n, p in encoder.named_parameters() if p.grad is not None}
    assert with_grad == expected
    assert float(encoder.depth_embed.grad.abs().sum()) > 0

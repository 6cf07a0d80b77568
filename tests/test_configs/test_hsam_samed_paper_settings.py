"""The main H-SAM and SAMed configs carry the papers' (and, where silent, the official code's)
hyper-parameters."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmsam.registry import MODELS, TRANSFORMS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def _params(cfg):
    """(total, trainable) parameters of the config's model, built on the meta device."""
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def _loss_weights(cfg):
    return {loss.loss_name: loss.loss_weight for loss in cfg.model.decode_head.loss_decode}


def _common_sam_lora_512(cfg, rank=4):
    backbone = cfg.model.backbone
    assert backbone.arch == 'vit_b' and backbone.img_size == 512 and backbone.frozen
    assert backbone.adapter == dict(type='LoRA', rank=rank, targets=('q', 'v'))
    assert backbone.pos_embed_resize == 'bilinear'  # the official build_sam.load_from
    assert cfg.model.data_preprocessor.size == (512, 512)
    # official: [0, 1] input, pixel mean 0 / std 1 (LoadNpzSlice gives 0-255)
    assert cfg.model.data_preprocessor.mean == [0.0, 0.0, 0.0]
    assert cfg.model.data_preprocessor.std == [255.0, 255.0, 255.0]
    assert cfg.model.decode_head.reinit_class_tokens
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.betas, optimizer.weight_decay) == ('AdamW', (0.9, 0.999),
                                                                        0.1)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.by_epoch) == ('LinearLR', 250, False)
    assert (poly.type, poly.warmup_iters, poly.power) == ('PolyLRAfterWarmup', 250, 0.9)
    assert cfg.default_hooks.checkpoint.save_best is None  # nothing selected on the test split
    assert cfg.train_cfg.val_interval == cfg.train_cfg.max_epochs  # evaluated once, at the end


def test_hsam_synapse_10pct_follows_the_paper():
    cfg = Config.fromfile(CONFIGS / 'hsam/hsam_vit-b_synapse_10pct.py')
    _common_sam_lora_512(cfg, rank=5)  # the official --rank default
    # Table 7: lr 2.5e-3, batch 32 (4 GPUs x 8), warm-up 250; Sec. 4.2: 300 epochs
    assert cfg.optim_wrapper.optimizer.lr == 0.0025
    assert cfg.train_dataloader.batch_size * 4 == 32 == cfg.auto_scale_lr.base_batch_size
    assert cfg.train_cfg.max_epochs == 300 and cfg.param_scheduler[1].end == 300
    assert cfg.train_dataloader.dataset.split == 'train_10pct'
    # Table 8: 0.1 CE + 0.9 Dice; lambda_w from 0.4 decaying (official 1 - 0.6 ** 0.99 ** e)
    assert _loss_weights(cfg) == dict(loss_ce=0.1, loss_dice=0.9)
    assert cfg.custom_hooks == [dict(type='StageLossWeightHook', start=0.4, decay=0.01)]
    head = cfg.model.decode_head
    assert (head.type, head.num_classes) == ('HSAMHead', 9)
    assert head.mask_guided_self_attention and head.class_balance
    assert head.hierarchical_pixel_decoder
    # the official network (H-SAM 5bdf491, 512 build), each quirk a switch
    assert head.mask_cross_attention == 'learnable' and head.stage_fusion == 'logits'
    assert (head.cmattn_mode, head.cmattn_weighting, head.embedding_noise) == (
        'official', 'softmax', 0.2)
    assert head.mask_decoder.type == 'HSAMMaskDecoder'
    assert head.mask_decoder.block_order == 'cross_first'
    assert head.stage2_decoder.type == 'HSAMStage2Decoder'
    assert (head.stage2_decoder.hypernetwork_depth, head.stage2_decoder.dropout,
            head.stage2_decoder.masked_attention_downsample_rate) == (5, 0.2, 1)
    assert head.prior_resize == 'bilinear' and head.attention_heads == 8
    assert head.prompt_encoder.num_point_embeddings == 11
    assert head.loss_label_resize == 'zoom'  # the official low_res_label: zoom(order=0)
    # the official RandomGenerator: rotation 45%, crop 41.25%, elastic 11.69%, none 2.06%
    augment = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[1])
    assert augment.branch_probabilities() == pytest.approx([0.45, 0.4125, 0.116875, 0.020625])
    # the official build (build_sam_vit_b(512, 8) + LoRA_Sam(r=5)), counted from the official
    # modules: 111,282,384 parameters, 24,003,536 outside the frozen encoder (Table 6 says
    # 112.3M; configs/hsam/README.md)
    assert _params(cfg) == (111_282_384, 24_003_536)


def test_hsam_synapse_full_is_the_official_224_vit_l_build():
    cfg = Config.fromfile(CONFIGS / 'hsam/hsam_vit-l_synapse_full.py')
    head = cfg.model.decode_head
    assert cfg.model.backbone.arch == 'vit_l' and cfg.model.backbone.img_size == 224
    assert head.attention_heads == 7  # MaskDecoder2_224: 196-wide tokens, 7 heads
    # build_sam_vit_l(224, 8) + LoRA_Sam(r=5), counted from the official modules
    assert _params(cfg) == (317_060_676, 12_827_204)


def test_samed_synapse_follows_the_official_code():
    cfg = Config.fromfile(CONFIGS / 'samed/samed_vit-b_synapse.py')
    _common_sam_lora_512(cfg)
    # train.py: lr 0.005, batch 12 per GPU x 2 GPUs, max_epochs 200 / stop_epoch 160, 0.8 Dice
    assert cfg.optim_wrapper.optimizer.lr == 0.005
    assert cfg.train_dataloader.batch_size == 12 and cfg.auto_scale_lr.base_batch_size == 24
    assert cfg.param_scheduler[1].end == 200 and cfg.train_cfg.max_epochs == 160
    assert _loss_weights(cfg) == dict(loss_ce=0.2, loss_dice=0.8)
    assert cfg.model.decode_head.type == 'SAMedHead'
    augment = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[1])
    assert [type(t.transforms[0]).__name__ for t in augment.transforms] == [
        'RandomRot90Flip', 'RandomRotateScale']
    assert augment.branch_probabilities() == pytest.approx([0.5, 0.25, 0.25])
    # SAMed paper: 92.2M parameters, 4.9M trainable (LoRA, prompt encoder, decoder)
    total, trainable = _params(cfg)
    assert round(total / 1e6, 2) == 92.19 and round(trainable / 1e6, 2) == 4.91


def test_la_and_promise12_configs_augment():
    for name in ('hsam_vit-b_la_4labelled', 'hsam_vit-b_promise12_3labelled'):
        cfg = Config.fromfile(CONFIGS / f'hsam/{name}.py')
        steps = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
        assert steps == ['LoadNpzSlice', 'RandomCascade', 'Resize', 'PackSegInputs'], name
        assert cfg.model.decode_head.num_classes == 2

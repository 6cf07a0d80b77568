"""The main configs of SeqSAM, SAM-MCL, MedSAM and pSAM against the papers' and the official
code's hyper-parameters (SeqSAM sec. 3.1 and scripts/run.py; tbwa233/Probabilistic-SAM)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import LinearLR

from mmsam.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
SAM_STATS = ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])


def load(name):
    return Config.fromfile(ROOT / 'configs' / name)


def train_pipeline_types(cfg):
    return [t['type'] for t in cfg.train_dataloader.dataset.pipeline]


def check_seqsam_protocol(cfg, qubiq):
    """SeqSAM sec. 3.1 + the official run: batch 2, AdamW 1e-4, wd 0.01, frozen encoder at 1024,
    box from a random non-empty reader; one epoch, linear decay to 0, clip 1; no selection."""
    assert cfg.train_dataloader.batch_size == 2
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1e-4, 0.01)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=1.0)
    assert cfg.train_cfg.max_epochs == 1
    (scheduler,) = cfg.param_scheduler
    assert (scheduler.type, scheduler.start_factor, scheduler.end_factor) == ('LinearLR', 1., 0.)
    assert cfg.default_hooks.checkpoint.save_best is None
    assert cfg.model.backbone.frozen and cfg.model.backbone.img_size == 1024
    assert cfg.model.data_preprocessor.size == (1024, 1024)
    assert (cfg.model.data_preprocessor.mean, cfg.model.data_preprocessor.std) == SAM_STATS
    box = cfg.train_dataloader.dataset.pipeline[1]
    assert box.type == 'BoxPromptFromAnnotation' and box.get('readers', 'non_empty') == \
        'non_empty' and not box.get('jitter', 0)
    dataset = cfg.test_dataloader.dataset
    if qubiq:  # the official code's 256 x 256 samples, the release's 20 / 4 cases
        assert dataset.pipeline[0].resize_to == (256, 256) and cfg.val_dataloader is None
    else:  # the official code's split
        assert dataset.data_root == 'data/lidc_seqsam-split' and \
            dataset.split_protocol == 'official'


@pytest.mark.parametrize('name,m', [('seqsam/seqsam_vit-b_lidc_m3.py', 3),
                                    ('seqsam/seqsam_vit-b_lidc_m10.py', 10),
                                    ('seqsam/seqsam_vit-b_qubiq-kidney_m3.py', 3),
                                    ('seqsam/seqsam_medsam-vit-b_lidc_m10.py', 10)])
def test_seqsam_main_configs(name, m):
    cfg = load(name)
    check_seqsam_protocol(cfg, 'qubiq' in name)
    head = cfg.model.decode_head
    assert (head.type, head.num_hypotheses, head.train_selection, head.bptt_logits) == (
        'SeqSAMHead', m, 'strided', True)
    # the official network and loss, quirks included (configs/seqsam/README.md)
    assert head.loss_decode == dict(
        type='HungarianDiceLoss', eps=1e-5, squared_pred=True, per_row=False, ignore_empty=True,
        empty_weighting='position', normalizer='pairs', batch_reduction='sum', loss_weight=1.0)
    assert head.recurrent_input_order == 'zh'
    assert head.mask_decoder.two_way_layer_norm_eps == 1e-6
    weights = 'medsam_vit_b.pth' if 'medsam' in name else 'sam_vit_b_01ec64.pth'
    assert cfg.model.backbone.checkpoint.endswith(weights)
    # the recommended protocol differs in split and schedule only
    if 'lidc' in name and 'medsam' not in name:
        ours = load(name.replace('.py', '_by-series-20e.py'))
        assert ours.model == cfg.model
        assert ours.train_cfg.max_epochs == 20 and ours.param_scheduler == []
        assert ours.train_dataloader.dataset.split_protocol == 'by-series'


def test_sam_mcl_main_config():
    cfg = load('sam_mcl/sam-mcl_vit-b_lidc.py')
    check_seqsam_protocol(cfg, qubiq=False)
    head = cfg.model.decode_head
    assert (head.type, head.mask_decoder.num_multimask_outputs, head.train_target) == (
        'SAMMCLHead', 3, 'random_reader')
    assert head.loss_decode.type == 'MultipleChoiceDiceLoss' and \
        head.loss_decode.get('relaxation', 0.0) == 0.0
    # the official per-row MONAI Dice and HF's two-way LayerNorm eps
    assert (head.loss_decode.eps, head.loss_decode.squared_pred, head.loss_decode.per_row) == (
        1e-5, True, True)
    assert head.mask_decoder.two_way_layer_norm_eps == 1e-6
    assert cfg.model.backbone.checkpoint.endswith('sam_vit_b_01ec64.pth')


def test_medsam_main_config():
    cfg = load('medsam/medsam_vit-b_lidc.py')
    check_seqsam_protocol(cfg, qubiq=False)  # SAM's normalisation, as the official processor
    head = cfg.model.decode_head
    assert (head.type, head.train_target) == ('MedSAMHead', 'random_reader')
    assert [loss.type for loss in head.loss_decode] == ['MaskDiceLoss']  # Dice only
    dice = head.loss_decode[0]
    assert (dice.eps, dice.squared_pred, dice.per_row) == (1e-5, True, True)  # MONAI per row
    assert head.mask_decoder.two_way_layer_norm_eps == 1e-6
    assert cfg.model.backbone.checkpoint.endswith('medsam_vit_b.pth')
    qubiq = load('medsam/medsam_vit-b_qubiq-kidney.py')
    check_seqsam_protocol(qubiq, qubiq=True)
    assert qubiq.train_cfg.max_epochs == 1 and qubiq.val_cfg is None


def test_psam_official_config_is_the_public_recipe():
    cfg = load('psam/psam_vit-b_lidc_official.py')
    assert cfg.train_dataloader.batch_size == 1 and cfg.train_cfg.max_epochs == 10
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('Adam', 1e-4, 0.0)
    assert cfg.param_scheduler == []
    preprocessor = cfg.model.data_preprocessor  # raw [0, 1] into SAM's encoder
    assert (preprocessor.mean, preprocessor.std) == ([0.0] * 3, [255.0] * 3)
    assert cfg.model.backbone.frozen and cfg.model.backbone.checkpoint.endswith(
        'sam_vit_b_01ec64.pth')
    box = cfg.train_dataloader.dataset.pipeline[1]
    assert (box.readers, box.empty) == ('any', 'centre')
    head_cfg = cfg.model.decode_head
    assert (head_cfg.latent_dim, head_cfg.beta, head_cfg.log_std_range, head_cfg.net_input,
            head_cfg.loss_resolution, head_cfg.train_target) == (
        6, 10.0, (-5.0, 5.0), 'image', 'input', 'prompted')
    for part in ('prompt_encoder', 'mask_decoder'):
        head_cfg[part].checkpoint = None
    head = MODELS.build(head_cfg)
    # the public PosteriorEncoder: conv 3/4 -> 32, conv 32 -> 64, global average, 2 x Linear
    params = [sum(p.numel() for p in net.parameters())
              for net in (head.prior_net, head.posterior_net)]
    assert params == [3 * 32 * 9 + 32 + 32 * 64 * 9 + 64 + 2 * (64 * 6 + 6),
                      4 * 32 * 9 + 32 + 32 * 64 * 9 + 64 + 2 * (64 * 6 + 6)]
    assert head.latent_to_prompt[-1].weight.abs().sum() > 0  # not zero-initialised
    with torch.no_grad():  # the clamp of the public code
        head.prior_net.to_gaussian.bias.fill_(30.0)
        _, log_std = head.prior_net(torch.zeros(1, 3, 16, 16))
    assert torch.all(log_std == 5.0)
    ours = load('psam/psam_vit-b_lidc.py')
    assert ours.model.decode_head.log_std_range == (-5.0, 2.0)
    assert ours.train_dataloader.batch_size == 2


def test_official_lr_decays_linearly_to_zero_within_one_step_of_the_hf_trainer():
    # HuggingFace's get_linear_schedule_with_warmup(0 warm-up): lr_t = lr (T - t) / T; the
    # config's LinearLR reaches 0 one iteration earlier: lr (1 - t / (T - 1)).
    cfg = load('seqsam/seqsam_vit-b_qubiq-kidney_m3.py')
    (scheduler,) = cfg.param_scheduler
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=cfg.optim_wrapper.optimizer.lr)
    total = 10  # 20 images, batch 2, one epoch
    lr_scheduler = LinearLR.build_iter_from_epoch(
        optimizer, start_factor=scheduler.start_factor, end_factor=scheduler.end_factor,
        begin=scheduler.begin, end=scheduler.end, epoch_length=total)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        lr_scheduler.step()
    assert lrs[0] == 1e-4 and lrs[-1] == 0.0
    assert lrs == pytest.approx([1e-4 * (1 - t / (total - 1)) for t in range(total)])
    hf = [1e-4 * (total - t) / total for t in range(total)]
    assert max(abs(a - b) for a, b in zip(lrs, hf)) <= 1e-4 / total + 1e-12

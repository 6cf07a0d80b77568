import pytest
import torch
from conftest import TINY_ARCH, TINY_IMG

from mmsam.models import SAMImageEncoder
from mmsam.models.adapters import LoRA, LoRAQKVLinear


def _lora_encoder(checkpoint=None, **lora):
    return SAMImageEncoder(arch=TINY_ARCH, img_size=TINY_IMG, frozen=True,
                           adapter=dict(type='LoRA', rank=4, **lora), checkpoint=checkpoint)


def test_lora_keeps_official_keys_and_starts_as_identity(tiny_sam, tiny_sam_checkpoint):
    encoder = _lora_encoder(tiny_sam_checkpoint)
    encoder.init_weights()
    assert isinstance(encoder.blocks[0].attn.qkv, LoRAQKVLinear)
    assert 'blocks.0.attn.qkv.weight' in encoder.state_dict()
    x = torch.randn(1, 3, TINY_IMG, TINY_IMG)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x)[0], tiny_sam.image_encoder(x), atol=1e-5, rtol=0)


def test_only_adapter_weights_train_and_frozen_weights_stay(tiny_sam_checkpoint):
    encoder = _lora_encoder(tiny_sam_checkpoint)
    encoder.init_weights()
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == set(encoder.adapter_param_names)
    assert trainable == {f'blocks.{i}.attn.qkv.lora_{ab}.{t}.weight'
                         for i in range(2) for ab in 'ab' for t in 'qv'}
    with torch.no_grad():  # B starts at zero, which gives A no gradient on the first step
        for name, param in encoder.named_parameters():
            if 'lora_b' in name:
                param.normal_()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=10.0)
    for _ in range(2):
        optimizer.zero_grad()
        encoder(torch.randn(2, 3, TINY_IMG, TINY_IMG))[0].square().mean().backward()
        optimizer.step()
    after = encoder.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == trainable


def test_lora_update_is_low_rank_on_q_and_v_only():
    base = torch.nn.Linear(8, 24)
    layer = LoRAQKVLinear(base, rank=2, alpha=4, targets=('q', 'v'))
    with torch.no_grad():
        for t in 'qv':
            layer.lora_b[t].weight.normal_()
    x = torch.randn(5, 8)
    delta = layer(x) - base(x)
    q, k, v = delta.chunk(3, dim=-1)
    assert torch.equal(k, torch.zeros_like(k))
    expected_q = x @ layer.lora_a['q'].weight.t() @ layer.lora_b['q'].weight.t() * 2.0
    torch.testing.assert_close(q, expected_q)
    assert torch.linalg.matrix_rank(v).item() <= 2


def test_samed_parameter_counts_at_512():
    """SAMed reports ~4.9M trainable of ~92M for ViT-B at 512 (LoRA r=4 on q, v)."""
    from mmsam.registry import MODELS
    from mmengine.config import Config
    cfg = Config.fromfile('configs/samed/samed_vit-b_synapse.py')
    model = MODELS.build(cfg.model)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lora = sum(p.numel() for n, p in model.named_parameters() if 'lora_' in n)
    assert lora == 12 * 2 * (768 * 4 + 4 * 768)
    assert 91e6 < total < 93.5e6, total
    assert 4.5e6 < trainable < 5.2e6, trainable


def test_bad_lora_config():
    with pytest.raises(ValueError, match='rank'):
        LoRA(rank=0)
    with pytest.raises(ValueError, match='targets'):
        LoRA(targets=('x',))


def test_merged_linear_gives_the_adapted_outputs():
    torch.manual_seed(0)
    base = torch.nn.Linear(8, 24)
    lora = LoRAQKVLinear(base, rank=2, alpha=4, targets=('q', 'v'))
    for t in lora.targets:
        torch.nn.init.normal_(lora.lora_b[t].weight)  # non-zero updates
    x = torch.randn(5, 8)
    merged = lora.merged_linear()
    assert type(merged) is torch.nn.Linear
    torch.testing.assert_close(merged(x), lora(x), atol=1e-5, rtol=1e-5)
    # the k third carries no update: equal to the base layer's
    torch.testing.assert_close(merged(x)[:, 8:16], base(x)[:, 8:16])

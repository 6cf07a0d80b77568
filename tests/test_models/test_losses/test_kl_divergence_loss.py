import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from mmsam.models.losses.kl_divergence_loss import KLDivergenceLoss, diagonal_gaussian_kl
from mmsam.registry import MODELS


@pytest.mark.parametrize('batch,dim,seed', [(1, 1, 0), (4, 6, 1), (7, 32, 2), (3, 2, 3)])
def test_matches_torch_distributions(batch, dim, seed):
    g = torch.Generator().manual_seed(seed)
    mu_q, mu_p = torch.randn(2, batch, dim, generator=g) * 3
    log_std_q, log_std_p = torch.rand(2, batch, dim, generator=g) * 6 - 4
    q = Independent(Normal(mu_q.double(), log_std_q.double().exp()), 1)
    p = Independent(Normal(mu_p.double(), log_std_p.double().exp()), 1)
    expected = kl_divergence(q, p)  # (batch,), summed over the latent dimensions
    loss = MODELS.build(dict(type='KLDivergenceLoss', loss_weight=2.5))
    assert loss.loss_name == 'loss_kl'
    value = loss(mu_q.double(), log_std_q.double(), mu_p.double(), log_std_p.double())
    torch.testing.assert_close(value, 2.5 * expected.mean())
    per_dim = diagonal_gaussian_kl(mu_q, log_std_q, mu_p, log_std_p)
    torch.testing.assert_close(per_dim.sum(-1), expected.float(), rtol=1e-4, atol=1e-4)


def test_zero_for_equal_distributions_and_gradient_reaches_both():
    mu = torch.randn(3, 6, requires_grad=True)
    log_std = torch.randn(3, 6, requires_grad=True)
    assert KLDivergenceLoss()(mu, log_std, mu, log_std).abs() < 1e-6
    mu_p = torch.zeros(3, 6, requires_grad=True)
    KLDivergenceLoss()(mu, log_std, mu_p, torch.zeros(3, 6)).backward()
    assert mu.grad.abs().sum() > 0 and mu_p.grad.abs().sum() > 0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match='same shapes'):
        KLDivergenceLoss()(torch.zeros(2, 6), torch.zeros(2, 5), torch.zeros(2, 6),
                           torch.zeros(2, 6))


def test_free_bits_floor_each_dimension_and_stop_its_gradient():
    from mmsam.models.losses import diagonal_gaussian_kl
    mu_q = torch.tensor([[0.1, 2.0], [-0.1, 2.0]], requires_grad=True)
    zeros = torch.zeros(2, 2)
    per_dim = diagonal_gaussian_kl(mu_q, zeros, zeros, zeros).mean(0)  # [0.005, 2.0]
    loss = MODELS.build(dict(type='KLDivergenceLoss', free_bits=0.5))(mu_q, zeros, zeros, zeros)
    assert loss.item() == pytest.approx(0.5 + per_dim[1].item())
    loss.backward()
    assert mu_q.grad[:, 0].abs().sum() == 0 and mu_q.grad[:, 1].abs().sum() > 0
    with pytest.raises(ValueError, match='free_bits'):
        MODELS.build(dict(type='KLDivergenceLoss', free_bits=-1))

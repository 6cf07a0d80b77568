"""Analytic KL divergence between two diagonal Gaussians (the variational term of pSAM)."""
import torch.nn as nn

from mmsam.registry import MODELS


def diagonal_gaussian_kl(mu_q, log_std_q, mu_p, log_std_p):
    """KL(q || p) of diagonal Gaussians, per latent dimension.

    ``KL = log s_p - log s_q + (s_q^2 + (mu_q - mu_p)^2) / (2 s_p^2) - 1/2``.

    Args:
        mu_q, log_std_q (Tensor): (..., L) mean and log standard deviation of q.
        mu_p, log_std_p (Tensor): (..., L) of p, broadcastable to q's shape.

    Returns:
        Tensor: (..., L) KL per dimension (>= 0).
    """
    var_ratio = (2 * (log_std_q - log_std_p)).exp()
    mean_term = ((mu_q - mu_p) * (-log_std_p).exp()).pow(2)
    return 0.5 * (var_ratio + mean_term - 1) - (log_std_q - log_std_p)


@MODELS.register_module()
class KLDivergenceLoss(nn.Module):
    """KL(q || p) of two diagonal Gaussians, summed over the latent dimensions and averaged
    over the batch (the KL term of the conditional-VAE bound of Probabilistic U-Net / pSAM).

    Gradient flows into both distributions: the posterior is pulled towards the prior and the
    prior towards the posterior.

    ``free_bits`` = lambda > 0 floors each latent dimension's batch-mean KL at lambda nats
    ("free bits", Kingma et al., NeurIPS 2016): a dimension below it gets no gradient from the
    KL, so the KL alone cannot drive the posterior onto the prior (posterior collapse).

    Args:
        free_bits (float): lambda >= 0, in nats per latent dimension (0: the plain KL).
        loss_weight (float): multiplier (pSAM's beta lives in :class:`PSAMHead`, keep 1 there).
        loss_name (str): key in the loss dict (must start with ``loss_``).
    """

    def __init__(self, free_bits=0.0, loss_weight=1.0, loss_name='loss_kl'):
        super().__init__()
        if free_bits < 0:
            raise ValueError(f'KLDivergenceLoss: free_bits must be >= 0, got {free_bits}')
        self.free_bits = float(free_bits)
        self.loss_weight, self._loss_name = loss_weight, loss_name

    def forward(self, mu_q, log_std_q, mu_p, log_std_p):
        """Args: mu_q, log_std_q, mu_p, log_std_p (Tensor): (B, L) each.

        Returns:
            Tensor: scalar loss.
        """
        if mu_q.shape != log_std_q.shape or mu_p.shape != log_std_p.shape:
            raise ValueError(f'KLDivergenceLoss: means and log-stds must have the same shapes, '
                             f'got q {tuple(mu_q.shape)}/{tuple(log_std_q.shape)} and p '
                             f'{tuple(mu_p.shape)}/{tuple(log_std_p.shape)}')
        kl = diagonal_gaussian_kl(mu_q, log_std_q, mu_p, log_std_p).flatten(0, -2).mean(0)
        return self.loss_weight * kl.clamp_min(self.free_bits).sum()

    @property
    def loss_name(self):
        return self._loss_name

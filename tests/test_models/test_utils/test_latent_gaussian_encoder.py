"""LatentGaussianEncoder: shapes, the log-std clamp, and an init that lets the input through."""
import pytest
import torch
import torch.nn as nn

from mmsam.models.utils.latent_gaussian_encoder import LatentGaussianEncoder


def image_and_annotations(batch=16, size=64):
    torch.manual_seed(0)
    image = torch.randn(1, 3, size, size).expand(batch, -1, -1, -1)
    fraction = torch.linspace(0, 0.5, batch).view(batch, 1, 1, 1)
    annotations = (torch.rand(batch, 1, size, size) < fraction).float()
    return torch.cat([image, annotations], dim=1)  # the same image, different annotations


def test_shapes_and_clamped_log_std():
    encoder = LatentGaussianEncoder(4, 6, channels=(8, 16), log_std_range=(-1., 0.5))
    with torch.no_grad():
        encoder.to_gaussian.bias[6:] = 10.0
    mu, log_std = encoder(image_and_annotations(batch=2, size=20))
    assert mu.shape == log_std.shape == (2, 6)
    assert torch.all(log_std == 0.5)


def test_init_passes_the_annotation_through_to_the_mean():
    """At the start the mean must vary with the annotation, or z is pure noise and the
    posterior never learns to encode it (PyTorch's default conv init: ~1e-4 here)."""
    x = image_and_annotations()
    torch.manual_seed(1)
    encoder = LatentGaussianEncoder(4, 6)
    with torch.no_grad():
        spread = encoder(x)[0].std(0).mean()
        for module in encoder.modules():  # PyTorch's default init, for comparison
            if isinstance(module, nn.Conv2d):
                module.reset_parameters()
        default_spread = encoder(x)[0].std(0).mean()
    assert spread > 0.01
    assert spread > 50 * default_spread


def test_bad_arguments():
    with pytest.raises(ValueError, match='latent_dim'):
        LatentGaussianEncoder(4, 0)
    with pytest.raises(ValueError, match='log_std_range'):
        LatentGaussianEncoder(4, 6, log_std_range=(1., 0.))

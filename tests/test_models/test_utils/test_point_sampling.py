"""Tests of PointRend importance sampling on logit maps with a known zero crossing."""
import pytest
import torch
from mmcv.ops import point_sample

from mmsam.models.utils import sample_uncertain_points


def ramp_logits(n=2, h=16, w=32, scale=20.0):
    """Logits 20 * (x - 0.5) at pixel centres: the decision boundary is the line x = 0.5."""
    x = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    return (scale * (x - 0.5)).expand(n, 1, h, w).clone()


def test_keeps_the_most_uncertain_candidates():
    logits = ramp_logits()
    points = sample_uncertain_points(logits, 32, oversample_ratio=8.0, importance_sample_ratio=1.0,
                                     generator=torch.Generator().manual_seed(0))
    assert points.shape == (2, 32, 2)
    # Reproduce the candidates: the first draw from the same generator.
    candidates = torch.rand(2, 256, 2, generator=torch.Generator().manual_seed(0))
    candidate_logits = point_sample(logits, candidates, align_corners=False)[:, 0]
    for i in range(2):
        kept = point_sample(logits[i:i + 1], points[i:i + 1], align_corners=False)[0, 0]
        # Exactly the 32 smallest |logit| of the 256 candidates.
        torch.testing.assert_close(kept.abs().sort().values,
                                   candidate_logits[i].abs().sort().values[:32])
    # Along the ramp that means close to the zero-crossing line x = 0.5.
    assert (points[..., 0] - 0.5).abs().max() < 0.15
    assert 0 <= points.min() and points.max() <= 1


def test_importance_ratio_splits_points():
    torch.manual_seed(0)
    logits = ramp_logits()
    points = sample_uncertain_points(logits[:, 0], 64, oversample_ratio=4.0,
                                     importance_sample_ratio=0.75)  # (N, H, W) input
    assert points.shape == (2, 64, 2)
    # |logit| rather than |x - 0.5|: zero padding halves the logits in the half-pixel border
    # band, so a point there may be uncertain far from the line.
    sampled = point_sample(logits, points, align_corners=False)[:, 0].abs()
    assert sampled[:, :48].max() < 2.5  # the 48 most uncertain of 256 candidates
    assert sampled[:, 48:].max() > 5  # 16 uniform points per mask are spread out
    torch.manual_seed(0)
    plain = sample_uncertain_points(ramp_logits(), 64, importance_sample_ratio=0.0)
    assert (plain[..., 0] - 0.5).abs().mean() > 0.2  # uniform: E|x - 0.5| = 0.25


def test_bad_ratios_raise():
    with pytest.raises(ValueError, match='oversample_ratio'):
        sample_uncertain_points(ramp_logits(), 8, oversample_ratio=0.5)

"""MaskRefine3D: shapes, b-major regrouping against a per-case loop, case independence,
gradients, errors and the parameter count."""
import pytest
import torch

from mmsam.models.utils.mask_refine_3d import MaskRefine3D
from mmsam.registry import MODELS


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='MaskRefine3D', num_queries=6, num_frames=4, hidden=8, **kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('upsample', [1, 2, 4])
def test_equals_a_per_case_loop_over_stacked_slices(upsample):
    """Case b is the slices b*T .. b*T+T-1 stacked along depth, queries as channels; the
    output is ``upsample`` times the input size (a non-square input keeps its aspect)."""
    refine = build(upsample=upsample).eval()
    x = torch.randn(8, 6, 5, 7)
    with torch.no_grad():
        out = refine(x)
    assert out.shape == (8, 6, 5 * upsample, 7 * upsample)
    with torch.no_grad():
        for b in range(2):
            volume = torch.stack([x[b * 4 + t] for t in range(4)], dim=1)[None]  # (1,Q,T,h,w)
            expected = refine.layers(volume)[0]
            for t in range(4):
                torch.testing.assert_close(out[b * 4 + t], expected[:, t])


def test_perturbing_one_case_changes_no_other_case():
    refine = build().eval()
    x = torch.randn(8, 6, 4, 4)
    moved = x.clone()
    moved[4:] += torch.randn(4, 6, 4, 4)
    with torch.no_grad():
        before, after = refine(x), refine(moved)
    torch.testing.assert_close(before[:4], after[:4], rtol=0, atol=1e-6)
    assert not torch.allclose(before[4:], after[4:])


def test_gradient_reaches_every_parameter():
    refine = build(upsample=4)
    out = refine(torch.randn(8, 6, 4, 4))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in refine.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_errors():
    with pytest.raises(ValueError, match='power of 2'):
        build(upsample=3)
    with pytest.raises(ValueError, match='num_frames T=4'):
        build()(torch.randn(6, 6, 4, 4))
    with pytest.raises(ValueError, match='6 query channels'):
        build()(torch.randn(8, 5, 4, 4))


def test_parameter_count_official_layout():
    """Q=24, hidden 64, x4: conv 3^3 + bias + IN affine, 2 ConvT + bias (IN without affine, as
    the official code), conv 3^3 + bias = 116,056."""
    refine = MaskRefine3D(24, 26)
    expected = (24 * 64 * 27 + 64 + 128) + 2 * (64 * 64 * 4 + 64) + (64 * 24 * 27 + 24)
    assert sum(p.numel() for p in refine.parameters()) == expected == 116_056

"""DConv / DMLP / Bottleneck adapters: the (b, t, q) layout, independence, parameter counts."""
import pytest
import torch
import torch.nn.functional as F

from mmsam.models.adapters import BottleneckAdapter, DConvAdapter, DMLPAdapter
from mmsam.registry import MODELS

B, T, Q, H, W, D = 2, 3, 2, 4, 5, 16


def _dconv_reference(ad, x, num_queries, hw):
    """MaskSAM's DConv written per (b, q) volume, stacking slices by hand."""
    h, w = hw
    xs = x.reshape(x.shape[0], h, w, -1)
    hid = F.gelu(ad.fc1(xs))
    c = hid.shape[-1]
    out = torch.empty_like(hid)
    for b in range(x.shape[0] // (T * num_queries)):
        for q in range(num_queries):
            idx = [(b * T + t) * num_queries + q for t in range(T)]
            vol = torch.stack([hid[i].permute(2, 0, 1) for i in idx], dim=1)  # (c, T, h, w)
            conv = F.conv3d(vol[None], ad.dwconv.weight, ad.dwconv.bias, padding=1, groups=c)[0]
            normed = F.layer_norm(conv.permute(1, 2, 3, 0), (c,), ad.norm.weight, ad.norm.bias,
                                  1e-6)
            for t, i in enumerate(idx):
                out[i] = hid[i] + F.gelu(normed[t])
    return (xs + ad.fc2(out)).reshape(x.shape)


def _dmlp_reference(ad, x, num_queries):
    """MaskSAM's DMLP ('middle') written per (b, q), stacking slices by hand."""
    hid = F.gelu(ad.fc1(x))
    out = torch.empty_like(hid)
    for b in range(x.shape[0] // (T * num_queries)):
        for q in range(num_queries):
            idx = [(b * T + t) * num_queries + q for t in range(T)]
            seq = torch.stack([hid[i] for i in idx], dim=-1)  # (..., c, T)
            seq = seq + ad.depth_fc2(F.gelu(ad.depth_fc1(seq)))
            for t, i in enumerate(idx):
                out[i] = seq[..., t]
    return x + ad.fc2(out)


def test_dconv_equals_per_volume_reference_in_both_layouts():
    torch.manual_seed(0)
    ad = DConvAdapter(D, T)
    assert ad.hidden == 4
    enc = torch.randn(B * T, H, W, D)  # encoder layout, Q = 1
    torch.testing.assert_close(ad(enc), _dconv_reference(ad, enc, 1, (H, W)))
    dec = torch.randn(B * T * Q, H * W, D)  # decoder keys
    torch.testing.assert_close(ad(dec, num_queries=Q, hw=(H, W)),
                               _dconv_reference(ad, dec, Q, (H, W)))


def test_dmlp_equals_per_sequence_reference_in_both_layouts():
    torch.manual_seed(0)
    ad = DMLPAdapter(D, T)
    assert ad.depth_fc1.weight.shape == (4 * T, T)
    enc = torch.randn(B * T, H, W, D)
    torch.testing.assert_close(ad(enc), _dmlp_reference(ad, enc, 1))
    tokens = torch.randn(B * T * Q, 7, D)
    torch.testing.assert_close(ad(tokens, num_queries=Q), _dmlp_reference(ad, tokens, Q))


@pytest.mark.parametrize('adapter_cls', [DConvAdapter, DMLPAdapter])
def test_perturbing_one_case_changes_no_other_case(adapter_cls):
    torch.manual_seed(0)
    adapter = adapter_cls(D, T)
    x = torch.randn(B * T * Q, H * W, D)
    y = adapter(x, num_queries=Q, hw=(H, W))
    x2 = x.clone()
    x2[T * Q:] += torch.randn_like(x2[T * Q:])  # case 1
    y2 = adapter(x2, num_queries=Q, hw=(H, W))
    torch.testing.assert_close(y2[:T * Q], y[:T * Q], atol=1e-6, rtol=0)
    assert not torch.allclose(y2[T * Q:], y[T * Q:])


def test_dmlp_mixes_only_along_depth_within_case_and_query():
    torch.manual_seed(0)
    ad = DMLPAdapter(D, T)
    x = torch.randn(B * T * Q, 6, D)
    y = ad(x, num_queries=Q)
    b, t, q = 1, 0, 1
    x2 = x.clone()
    x2[(b * T + t) * Q + q, 2] += 1.0  # one token of one slice of one query
    y2 = ad(x2, num_queries=Q)
    changed = (y2 - y).abs().amax(dim=-1) > 1e-6  # (N, tokens)
    same_bq = [(b * T + ti) * Q + q for ti in range(T)]
    expected = torch.zeros_like(changed)
    expected[same_bq, 2] = True
    assert torch.equal(changed, expected)


def test_dconv_with_centre_only_kernel_is_per_slice():
    torch.manual_seed(0)
    ad = DConvAdapter(D, T)
    with torch.no_grad():
        centre = ad.dwconv.weight[:, :, 1, 1, 1].clone()
        ad.dwconv.weight.zero_()
        ad.dwconv.weight[:, :, 1, 1, 1] = centre
    x = torch.randn(B * T, H, W, D)
    y = ad(x)
    x2 = x.clone()
    x2[4, 2, 3] += 1.0
    changed = (ad(x2) - y).abs().amax(dim=-1) > 1e-6
    expected = torch.zeros_like(changed)
    expected[4, 2, 3] = True
    assert torch.equal(changed, expected)
    # With the full 3^3 kernel the same change reaches the neighbouring slices.
    full = DConvAdapter(D, T)
    spread = (full(x2) - full(x)).abs().amax(dim=(-1, -2, -3)) > 1e-6
    assert spread.tolist() == [False, False, False, True, True, True]


@pytest.mark.parametrize('position', ['middle', 'after_up', 'before_down'])
def test_dmlp_positions_zero_init_and_depth_mixing(position):
    torch.manual_seed(0)
    x = torch.randn(B * T, 5, D)
    zero = DMLPAdapter(D, T, position=position, zero_init=True)
    torch.testing.assert_close(zero(x), x)
    assert torch.equal(DMLPAdapter(D, T, position=position, zero_init=True, skip=False)(x),
                       torch.zeros_like(x))
    ad = DMLPAdapter(D, T, position=position)
    x2 = x.clone()
    x2[0] += 1.0
    changed = (ad(x2) - ad(x)).abs().amax(dim=(-1, -2)) > 1e-6
    assert changed.tolist() == [True] * T + [False] * T  # all slices of case 0, nothing else


def test_positions_are_different_functions():
    torch.manual_seed(0)
    x = torch.randn(T, 3, D)
    outs = []
    for position in ('middle', 'after_up', 'before_down'):
        torch.manual_seed(1)
        outs.append(DMLPAdapter(D, T, position=position)(x))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_bottleneck_is_per_token_and_skip():
    torch.manual_seed(0)
    ad = BottleneckAdapter(D)
    x = torch.randn(4, 3, D)
    torch.testing.assert_close(ad(x, num_queries=2, hw=(1, 3)), x + ad.fc2(F.gelu(ad.fc1(x))))
    assert torch.equal(BottleneckAdapter(D, zero_init=True)(x), x)
    assert torch.equal(BottleneckAdapter(D, skip=False, zero_init=True)(x), torch.zeros_like(x))


def test_zero_init_dconv_is_identity_or_zero():
    x = torch.randn(B * T, H, W, D)
    assert torch.equal(DConvAdapter(D, T, zero_init=True)(x), x)
    assert torch.equal(DConvAdapter(D, T, zero_init=True, skip=False)(x), torch.zeros_like(x))


def test_bad_layouts_are_reported():
    with pytest.raises(ValueError, match=r'5 items.*num_frames \(3\)'):
        DConvAdapter(D, T)(torch.randn(5, H, W, D))
    with pytest.raises(ValueError, match=r'12 items.*num_frames \(3\) x num_queries \(5\)'):
        DMLPAdapter(D, T)(torch.randn(12, 4, D), num_queries=5)
    with pytest.raises(ValueError, match='hw'):
        DConvAdapter(D, T)(torch.randn(T, H * W, D))
    with pytest.raises(ValueError, match='L=20'):
        DConvAdapter(D, T)(torch.randn(T, H * W, D), hw=(3, 3))
    with pytest.raises(ValueError, match='odd'):
        DConvAdapter(D, T, kernel_size=2)
    with pytest.raises(ValueError, match='position'):
        DMLPAdapter(D, T, position='inside')
    with pytest.raises(ValueError, match='num_frames'):
        DMLPAdapter(D, None)


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('dims', [256, 768, 1280])
def test_dconv_parameter_count_formula(dims):
    """Hand count: DConv(D) = D^2/2 + D + 31 D / 4 (hidden 64 / 192 / 320)."""
    assert _count(DConvAdapter(dims, 4)) == dims ** 2 // 2 + dims + 31 * dims // 4
    assert _count(MODELS.build(dict(type='DConvAdapter', embed_dims=dims, num_frames=26))) == \
        dims ** 2 // 2 + dims + 31 * dims // 4


@pytest.mark.parametrize('frames', [4, 9, 26])
def test_dmlp_parameter_count_formula(frames):
    """Hand count: DMLP(T) at D = 256 is 33,088 + 8 T^2 + 5 T (33,781 at T = 9)."""
    assert _count(DMLPAdapter(256, frames)) == 33088 + 8 * frames ** 2 + 5 * frames
    assert _count(BottleneckAdapter(256)) == 33088


def test_spec_values():
    assert _count(DConvAdapter(1280, 26)) == 830400
    assert _count(DConvAdapter(768, 26)) == 301632
    assert _count(DConvAdapter(256, 26)) == 35008
    assert _count(DMLPAdapter(256, 9)) == 33781

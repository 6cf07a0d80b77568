"""mmsam.models.utils.ndimage_zoom against scipy.ndimage.zoom itself."""
import numpy as np
import pytest
import torch
from scipy.ndimage import zoom

from mmsam.models.utils.ndimage_zoom import zoom_nearest, zoom_spline

# the official sizes (SAMed 512 -> 128 low-res labels, H-SAM 224 -> 56, the fixture's
# 128 -> 32, the 224 test's 224 -> 512 back-zoom) and odd, non-square ones
SHAPES = [((512, 512), (128, 128)), ((224, 224), (56, 56)), ((128, 128), (32, 32)),
          ((224, 224), (512, 512)), ((56, 40), (97, 13)), ((7, 300), (300, 7)), ((5, 5), (1, 1)),
          # scipy's edge quirk: the last coordinate rounds past n_in - 1 -> cval 0
          ((512, 512), (224, 224)), ((64, 64), (28, 28))]


@pytest.mark.parametrize('shape_in,shape_out', SHAPES)
def test_zoom_nearest_equals_scipy_zoom_order_0(shape_in, shape_out):
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 9, (3, *shape_in), generator=gen)
    got = zoom_nearest(labels, shape_out)
    factors = (shape_out[0] / shape_in[0], shape_out[1] / shape_in[1])
    for plane, out in zip(labels.numpy(), got.numpy()):
        assert np.array_equal(out, zoom(plane, factors, order=0))
    assert got.dtype == labels.dtype


def test_zoom_nearest_keeps_scipys_zero_edge():
    """At 512 -> 224 scipy's last coordinate rounds above 511: constant mode gives 0 there."""
    labels = torch.ones(1, 512, 512, dtype=torch.long)
    out = zoom_nearest(labels, (224, 224))
    assert out[0, -1].sum() == 0 and out[0, :, -1].sum() == 0 and out[0, :-1, :-1].all()


def test_zoom_nearest_is_not_torch_nearest():
    """The reason for the helper: F.interpolate(nearest) reads other pixels."""
    labels = torch.arange(128.).repeat(128, 1)[None, None]
    torch_nearest = torch.nn.functional.interpolate(labels, size=(32, 32), mode='nearest')
    assert not torch.equal(zoom_nearest(labels, (32, 32)), torch_nearest)
    # zoom keeps the corners: pixel 0 and pixel 127 (torch reads 0 and 124)
    assert zoom_nearest(labels, (32, 32))[0, 0, 0, [0, -1]].tolist() == [0., 127.]


@pytest.mark.parametrize('shape_in,shape_out', [((512, 512), (224, 224)),
                                                ((224, 224), (512, 512)), ((40, 56), (17, 90))])
def test_zoom_spline_equals_scipy_zoom_order_3_per_plane(shape_in, shape_out):
    rng = np.random.default_rng(0)
    image = rng.random((3, *shape_in)).astype(np.float32)
    got = zoom_spline(torch.from_numpy(image), shape_out)
    factors = (shape_out[0] / shape_in[0], shape_out[1] / shape_in[1])
    expected = np.stack([zoom(plane, factors, order=3) for plane in image])
    assert got.shape == (3, *shape_out) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_zoom_spline_keeps_an_image_at_its_size():
    image = torch.rand(3, 8, 8)
    assert zoom_spline(image, (8, 8)) is image

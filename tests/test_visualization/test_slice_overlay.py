"""render_slice_comparison: two labelled overlay panels and a legend, at a readable size."""
import numpy as np
import pytest

from mmsam.visualization import slice_overlay
from mmsam.visualization.slice_overlay import (MARGIN, class_colors, display_slice,
                                               overlay_labels, panel_scale,
                                               render_slice_comparison, volume_display_range)

CLASSES = ('background', 'liver', 'gallbladder', 'pancreas')
PALETTE = [[0, 0, 0], [200, 0, 0], [0, 200, 0], [0, 0, 200]]


def synthetic_slice(size=128):
    """A gray slice, gt with liver + gallbladder, a prediction with liver + pancreas."""
    image = np.full((size, size, 3), 100, np.uint8)
    gt = np.zeros((size, size), np.uint8)
    gt[20:60, 20:80] = 1
    gt[70:80, 70:80] = 2  # a small organ, absent from the prediction
    pred = np.zeros_like(gt)
    pred[22:60, 20:78] = 1
    pred[100:110, 10:20] = 3
    return image, gt, pred


def test_size_panels_and_legend(monkeypatch):
    calls = []
    real_legend = slice_overlay.draw_legend

    def spy(names, colors, width, present=None):
        calls.append((list(names), [tuple(c) for c in colors], width, list(present)))
        return real_legend(names, colors, width, present)

    monkeypatch.setattr(slice_overlay, 'draw_legend', spy)
    image, gt, pred = synthetic_slice()
    picture = render_slice_comparison(image, gt, pred, CLASSES, PALETTE, title='case0001 slice 3')
    # 128 px slices are upsampled x3 to 384 px panels; two panels, a gap, two margins.
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert picture.shape[1] == 2 * MARGIN + 2 * 384 + MARGIN
    assert picture.shape[0] > 384
    # The legend lists the foreground classes in their colours; pancreas is only predicted,
    # every class is in some panel.
    assert calls == [(['liver', 'gallbladder', 'pancreas'],
                      [(200, 0, 0), (0, 200, 0), (0, 0, 200)], picture.shape[1],
                      [True, True, True])]


def panel_pixel(picture, panel, y, x, scale=3):
    """Pixel (y, x) of the slice in panel 0 (ground truth) or 1 (prediction)."""
    panels_bottom = picture.shape[0] - legend_height(picture)
    top = panels_bottom - MARGIN // 2 - 128 * scale
    left = MARGIN + panel * (128 * scale + MARGIN)
    return picture[top + y * scale + 1, left + x * scale + 1]


def legend_height(picture):
    names = [c for c in CLASSES[1:]]
    return slice_overlay.draw_legend(names, PALETTE[1:], picture.shape[1]).shape[0]


def test_panels_show_gt_left_and_prediction_right():
    image, gt, pred = synthetic_slice()
    picture = render_slice_comparison(image, gt, pred, CLASSES, PALETTE, alpha=0.5)
    # Inside the gallbladder (gt only): blended green on the left, the plain image on the right.
    np.testing.assert_array_equal(panel_pixel(picture, 0, 75, 75), [50, 150, 50])
    np.testing.assert_array_equal(panel_pixel(picture, 1, 75, 75), [100, 100, 100])
    # Inside the predicted pancreas: plain on the left, blended blue on the right.
    np.testing.assert_array_equal(panel_pixel(picture, 0, 105, 15), [100, 100, 100])
    np.testing.assert_array_equal(panel_pixel(picture, 1, 105, 15), [50, 50, 150])


def test_legend_area_has_the_class_colours():
    image, gt, pred = synthetic_slice()
    picture = render_slice_comparison(image, gt, pred, CLASSES, PALETTE)
    legend = picture[-legend_height(picture):]
    colours = {tuple(p) for p in legend.reshape(-1, 3)}
    assert {(200, 0, 0), (0, 200, 0), (0, 0, 200)} <= colours
    # Text (dark pixels) besides the swatches' outlines.
    assert (legend.sum(axis=2) < 100).sum() > 200


def test_prediction_only_has_one_panel_and_large_slices_are_not_upsampled():
    image, _, pred = synthetic_slice(size=400)
    picture = render_slice_comparison(image, None, pred, CLASSES, PALETTE)
    assert picture.shape[1] == 2 * MARGIN + 400
    assert panel_scale(400, 400, 384) == 1 and panel_scale(100, 50, 384) == 4


def test_shape_mismatch_is_an_error():
    image, gt, pred = synthetic_slice()
    with pytest.raises(ValueError, match='share'):
        render_slice_comparison(image, gt[:64], pred, CLASSES)


def test_unknown_class_ids_get_a_name_and_colour(monkeypatch):
    calls = []
    real_legend = slice_overlay.draw_legend
    monkeypatch.setattr(slice_overlay, 'draw_legend',
                        lambda names, *a: calls.append(list(names)) or real_legend(names, *a))
    image, gt, pred = synthetic_slice()
    pred[0:5, 0:5] = 5
    picture = render_slice_comparison(image, gt, pred, CLASSES, None)
    assert picture.shape[1] == 2 * MARGIN + 2 * 384 + MARGIN
    assert calls == [['liver', 'gallbladder', 'pancreas', 'class 4', 'class 5']]
    assert len(class_colors(None, 7)) == 7
    assert class_colors(PALETTE, 2) == [(0, 0, 0), (200, 0, 0)]


def test_overlay_outlines_and_blends():
    image = np.zeros((10, 10, 3), np.uint8)
    label = np.zeros((10, 10), np.uint8)
    label[2:8, 2:8] = 1
    out = overlay_labels(image, label, [(0, 0, 0), (200, 100, 0)], alpha=0.5)
    np.testing.assert_array_equal(out[2, 2], [200, 100, 0])  # outline: full colour
    np.testing.assert_array_equal(out[4, 4], [100, 50, 0])   # inside: blended
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])


def test_display_range_of_a_zscored_volume():
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(8, 32, 32)).astype(np.float32)
    low, high = volume_display_range(volume)
    np.testing.assert_allclose([low, high], np.percentile(volume, [0.5, 99.5]), rtol=1e-5)
    shown = display_slice(volume[0], low, high)
    assert shown.shape == (32, 32, 3) and shown.dtype == np.uint8
    assert shown.min() == 0 or shown.max() == 255
    assert volume_display_range(np.zeros((2, 2))) == (0.0, 1.0)

"""Box (and point) prompts on prompted pictures: the drawing itself, the hypothesis grids
written by HypothesisVisualizer, and the scan overlays written by write_scan_outputs."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.apis.scan_inference import ScanPrediction
from mmsam.apis.scan_outputs import write_scan_outputs
from mmsam.datasets.io.scan import ScanGeometry
from mmsam.visualization import slice_overlay
from mmsam.visualization.hypothesis_visualizer import HypothesisVisualizer
from mmsam.visualization.prompt_drawing import BOX_COLOR, POINT_COLORS, draw_prompts

RED = np.array(BOX_COLOR, np.uint8)


def outline(x0, y0, x1, y1):
    """Every pixel (x, y) on the rectangle through the given pixel indices."""
    return ([(x, y) for x in range(x0, x1 + 1) for y in (y0, y1)]
            + [(x, y) for y in range(y0, y1 + 1) for x in (x0, x1)])


def assert_outline_colour(picture, corners, color=RED):
    bad = [(x, y, picture[y, x].tolist()) for x, y in outline(*corners)
           if not np.array_equal(picture[y, x], color)]
    assert not bad, f'{len(bad)} outline pixels not {color.tolist()}, e.g. {bad[:3]}'


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def test_draw_prompts_at_scale_one_and_three():
    image = np.full((40, 50, 3), 90, np.uint8)
    drawn = draw_prompts(image, box=(5, 6, 30, 20))
    assert_outline_colour(drawn, (5, 6, 30, 20))
    assert (drawn[13, 6:30] == 90).all() and (drawn[21:] == 90).all()  # inside and below
    assert (image == 90).all()  # the input is left as it is
    # x3: through the centres of the edge pixels (pixel v -> 3 v + 1)
    big = draw_prompts(np.full((120, 150, 3), 90, np.uint8), box=(5, 6, 30, 20),
                       scale_xy=(3, 3))
    assert_outline_colour(big, (16, 19, 91, 61))
    assert (big[40, 20:90] == 90).all()


def test_points_have_their_label_colours():
    image = np.zeros((32, 32, 3), np.uint8)
    drawn = draw_prompts(image, points=np.array([[8, 8], [24, 20]]), point_labels=[1, 0])
    assert np.array_equal(drawn[8, 8], POINT_COLORS[1])
    assert np.array_equal(drawn[20, 24], POINT_COLORS[0])
    with pytest.raises(ValueError, match=r'box prompt \[5\.0, 6\.0, 1\.0, 20\.0\]'):
        draw_prompts(image, box=(5, 6, 1, 20))
    with pytest.raises(ValueError, match=r'point prompts of shape \(3,\)'):
        draw_prompts(image, points=np.array([1, 2, 3]))


def test_hypothesis_grid_written_with_the_box(tmp_path):
    """The PNG infer.py writes for a box-prompted model: the first panel shows the box."""
    sample = SegDataSample()
    sample.set_metainfo(dict(img_path='/d/lesion00001.npz', ori_shape=(64, 64),
                             img_shape=(64, 64),
                             prompt_box=np.array([10, 12, 40, 50], np.float32)))
    hyp = torch.zeros(2, 64, 64, dtype=torch.bool)
    hyp[:, 20:40, 20:35] = True
    sample.pred_hypotheses = PixelData(data=hyp)
    sample.pred_sem_seg = PixelData(data=hyp[:1].long())
    vis = HypothesisVisualizer(name='test_prompt_grid', min_panel_size=256, spacing=4)
    out = tmp_path / 'grid.png'
    vis.add_datasample('x', np.full((64, 64, 3), 128, np.uint8), sample, out_file=str(out))
    written = read_rgb(out)
    top = written.shape[0] - 256  # panels of 256 px (x4) under the title strip
    first = written[top:, :256]
    assert_outline_colour(first, (4 * 10 + 2, 4 * 12 + 2, 4 * 40 + 2, 4 * 50 + 2))
    assert not (written[top:, 260:516] == RED).all(-1).any()  # the hypothesis panel: no box


def test_scan_overlay_draws_the_slice_box(tmp_path):
    """write_scan_outputs draws each prompted slice's box, and none on other slices."""
    depth, height, width = 3, 48, 64
    labels = np.zeros((depth, height, width), np.uint8)
    labels[1, 10:30, 20:40] = 1
    hypotheses = np.stack([labels, labels])
    prediction = ScanPrediction(
        labels=labels, image=np.random.default_rng(0).random(labels.shape).astype(np.float32),
        geometry=ScanGeometry(affine=np.eye(4), shape=labels.shape, spacing=(1.0, 1.0, 1.0),
                              source='nifti'),
        hypotheses=hypotheses, agreement=hypotheses.mean(0, dtype=np.float32), prompted=[1])
    box = (15, 5, 45, 35)
    paths = write_scan_outputs(str(tmp_path), 'scan', prediction, ['background', 'lesion'], None,
                               picture_slices=[1, 2], boxes={1: box})
    scale = slice_overlay.panel_scale(height, width, 384)  # 6: 64 px -> 384
    left = slice_overlay.MARGIN
    top = slice_overlay.MARGIN + 2 * slice_overlay._text_height() + slice_overlay.MARGIN // 2 \
        + slice_overlay.MARGIN
    corners = tuple(scale * v + scale // 2 for v in box)
    prompted = read_rgb(tmp_path / 'scan_slice001.png')
    panel = prompted[top:top + scale * height, left:left + scale * width]
    assert_outline_colour(panel, corners)
    other = read_rgb(tmp_path / 'scan_slice002.png')
    assert not (other == RED).all(-1).any()
    assert str(tmp_path / 'scan_slice001.png') in paths

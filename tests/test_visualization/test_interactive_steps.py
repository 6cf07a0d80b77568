"""render_interactive_steps: one column per step, clicks marked, agreement row."""
import numpy as np
import pytest

from mmsam.visualization.interactive_steps import render_interactive_steps
from mmsam.visualization.prompt_drawing import POINT_COLORS


def session():
    image = np.linspace(0, 1, 20 * 24).reshape(20, 24)
    target = np.zeros((20, 24), np.uint8)
    target[5:15, 6:18] = 1
    steps = np.zeros((3, 20, 24), np.uint8)
    steps[0, 5:15, 6:12] = 1
    steps[1, 5:15, 6:18] = 1
    steps[2] = steps[1]
    steps[2, 0:2, 0:2] = 0
    clicks = [dict(point=None, label=None, source='box'),
              dict(point=[14.0, 10.0], label=1, source='error'),
              dict(point=[2.0, 2.0], label=0, source='suggestion')]
    agreement = np.ones((3, 20, 24))
    agreement[:, 5:15, 12:18] = 2 / 3
    return image, steps, clicks, target, agreement


def test_layout_and_click_colours():
    image, steps, clicks, target, agreement = session()
    picture = render_interactive_steps(image, steps, clicks, box=[6, 5, 17, 14], target=target,
                                       agreement=agreement, min_panel_size=96, spacing=4)
    scale = 4  # ceil(96 / 24)
    panel_h, panel_w = 20 * scale + 18, 24 * scale
    assert picture.shape == (2 * panel_h + 4, 3 * panel_w + 2 * 4, 3)
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert POINT_COLORS[1] in colours and POINT_COLORS[0] in colours
    # the box step's column has no click marks
    first = picture[:panel_h, :panel_w].reshape(-1, 3)
    assert not any(tuple(c) == POINT_COLORS[1] for c in first)
    without = render_interactive_steps(image, steps, clicks)
    assert without.shape[0] == 20 * 8 + 18  # one row; default panel 192 -> scale 192 / 24
    with pytest.raises(ValueError, match='one click entry per step'):
        render_interactive_steps(image, steps, clicks[:2])

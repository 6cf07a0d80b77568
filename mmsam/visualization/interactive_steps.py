"""A picture of an interactive session: one column per step (box, then each click).

Top row: the image with the step's mask (filled, translucent), the target's outline, the box
and every click made so far (``+`` green: foreground, ``x`` magenta: background, drawn by
:func:`mmsam.visualization.prompt_drawing.draw_prompts`), titled with the step's Dice. Bottom
row (when agreement maps are given): the hypotheses' agreement ``max(p, 1 - p)`` after that
step, from dark (0.5, split evenly) to white (1, all agree), with the next click marked.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from mmsam.evaluation.functional.ged import dice
from .prompt_drawing import draw_prompts

MASK_COLOR = np.array((255, 160, 0), np.float64)
TARGET_COLOR = (0, 200, 255)
TITLE_HEIGHT = 18


def _to_rgb(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        low, high = float(image.min()), float(image.max())
        image = ((image - low) / (high - low + 1e-12) * 255).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


def _upscale(picture, scale, nearest=True):
    h, w = picture.shape[:2]
    return cv2.resize(picture, (w * scale, h * scale),
                      interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)


def _titled(panel, text):
    strip = np.full((TITLE_HEIGHT, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (3, TITLE_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([strip, panel])


def render_interactive_steps(image: np.ndarray, steps: np.ndarray, clicks: Sequence[dict],
                             box: Optional[Sequence[float]] = None,
                             target: Optional[np.ndarray] = None,
                             agreement: Optional[np.ndarray] = None,
                             min_panel_size: int = 192, spacing: int = 4,
                             alpha: float = 0.45) -> np.ndarray:
    """Draw every step of one session side by side.

    Args:
        image (ndarray): (H, W) or (H, W, 3) image.
        steps (ndarray): (S, H, W) binary masks after each step (``interactive_steps``).
        clicks (sequence[dict]): S entries ``point`` ([x, y] or None) and ``label`` (1/0) as
            in ``interactive_clicks``; entry 0 is the box step.
        box (sequence[float], optional): (x0, y0, x1, y1) box prompt.
        target (ndarray, optional): (H, W) binary ground truth, outlined and used in titles.
        agreement (ndarray, optional): (S, H, W) agreement maps in [0.5, 1].
        min_panel_size (int): panels are upscaled by an integer factor to at least this size.
        spacing (int): white gap between panels, pixels.
        alpha (float): opacity of the mask.

    Returns:
        ndarray: (rows * (h + 18) + gaps, S * w + gaps, 3) uint8 RGB picture.
    """
    steps = np.asarray(steps) != 0
    if steps.ndim != 3 or len(clicks) != len(steps):
        raise ValueError(f'render_interactive_steps: steps must be (S, H, W) with one click '
                         f'entry per step, got {steps.shape} and {len(clicks)} clicks')
    rgb = _to_rgb(image)
    if rgb.shape[:2] != steps.shape[1:]:
        raise ValueError(f'render_interactive_steps: image {rgb.shape[:2]} and steps '
                         f'{steps.shape[1:]} differ in size')
    scale = max(1, int(np.ceil(min_panel_size / max(rgb.shape[:2]))))
    top, bottom = [], []
    points, labels = [], []
    for s, mask in enumerate(steps):
        click = clicks[s]
        if click.get('point') is not None:
            points.append(click['point'])
            labels.append(int(click['label']))
        panel = rgb.astype(np.float64)
        panel[mask] = (1 - alpha) * panel[mask] + alpha * MASK_COLOR
        panel = _upscale(panel.astype(np.uint8), scale)
        if target is not None:
            outline = _upscale(np.asarray(target, np.uint8), scale)
            contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(panel, contours, -1, TARGET_COLOR, 1)
        panel = draw_prompts(panel, box=box, points=np.asarray(points).reshape(-1, 2),
                             point_labels=labels, scale_xy=(scale, scale))
        title = 'box' if s == 0 else f'click {s}'
        if target is not None:
            title += f'  DSC {dice(mask, np.asarray(target) != 0, 1.0):.3f}'
        top.append(_titled(panel, title))
        if agreement is not None:
            grey = ((np.clip(agreement[s], 0.5, 1.0) - 0.5) * 2 * 255).astype(np.uint8)
            heat = cv2.applyColorMap(_upscale(grey, scale), cv2.COLORMAP_INFERNO)[..., ::-1]
            upcoming = clicks[s + 1] if s + 1 < len(clicks) else {}
            if upcoming.get('point') is not None:
                heat = draw_prompts(np.ascontiguousarray(heat), points=[upcoming['point']],
                                    point_labels=[upcoming['label']], scale_xy=(scale, scale))
            bottom.append(_titled(np.ascontiguousarray(heat), 'agreement, next click'))
    rows = [top] + ([bottom] if bottom else [])
    gap = np.full((top[0].shape[0], spacing, 3), 255, np.uint8)
    lines = []
    for row in rows:
        line = row[0]
        for panel in row[1:]:
            line = np.concatenate([line, gap, panel], axis=1)
        lines.append(line)
    hgap = np.full((spacing, lines[0].shape[1], 3), 255, np.uint8)
    picture = lines[0]
    for line in lines[1:]:
        picture = np.concatenate([picture, hgap, line])
    return picture

"""Drawing the prompts of a prompted picture: the box and, where given, the points.

Used by :class:`HypothesisVisualizer` (the first panel of a grid) and by
:func:`mmsam.visualization.slice_overlay.render_slice_comparison` (the scan overlays of
``tools/infer.py``). OpenCV draws without anti-aliasing, so every pixel of an outline has
exactly the prompt's colour in the written PNG.

Coordinates are pixel indices of the image the prompt was given for (``(x0, y0, x1, y1)``, the
box's edge pixels included; points ``(x, y)``); a picture shown ``scale`` times larger is drawn
through the centres of those pixels at its own scale.
"""
import cv2
import numpy as np

BOX_COLOR = (255, 0, 0)
#: RGB colour of foreground (label 1) and background (label 0) points, as in SAM's demos.
POINT_COLORS = {1: (0, 255, 0), 0: (255, 0, 255)}


def to_picture(coords, scale_xy):
    """Pixel-index coordinates (..., 2) (x, y) -> the pixels of a picture scaled by
    ``scale_xy`` = (sx, sy) that hold the centres of those pixels (int64, same shape)."""
    coords = np.asarray(coords, dtype=np.float64)
    scale = np.asarray(scale_xy, dtype=np.float64)
    return np.floor((coords + 0.5) * scale).astype(np.int64)


def draw_prompts(image, box=None, points=None, point_labels=None, scale_xy=(1.0, 1.0),
                 box_color=BOX_COLOR, point_colors=None, thickness=None):
    """A copy of ``image`` with the box prompt outlined and the point prompts marked.

    Args:
        image (ndarray): (H, W, 3) uint8 RGB picture.
        box (Sequence[float], optional): (x0, y0, x1, y1) pixel indices of the original image.
        points (ndarray, optional): (N, 2) (x, y) pixel indices of the original image.
        point_labels (Sequence[int], optional): (N,) 1 foreground, 0 background (default all
            foreground); they pick the colours of ``point_colors``.
        scale_xy (tuple[float, float]): picture pixels per original pixel, (sx, sy).
        box_color (tuple): RGB colour of the box outline.
        point_colors (dict, optional): label -> RGB colour (default :data:`POINT_COLORS`).
        thickness (int, optional): line width in pixels (default: 1, or 2 on pictures at
            least 256 pixels on their longer side).

    Returns:
        ndarray: (H, W, 3) uint8, the picture with the prompts.

    Raises:
        ValueError: a box that is not 4 numbers with x0 <= x1, y0 <= y1, or points not (N, 2).
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if thickness is None:
        thickness = 2 if max(out.shape[:2]) >= 256 else 1
    if box is not None:
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.size != 4 or box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f'box prompt {box.tolist()}: expected (x0, y0, x1, y1) with '
                             'x0 <= x1 and y0 <= y1')
        (x0, y0), (x1, y1) = to_picture(box.reshape(2, 2), scale_xy)
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)),
                      tuple(int(c) for c in box_color), thickness, cv2.LINE_8)
    if points is not None and len(points):
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f'point prompts of shape {points.shape}: expected (N, 2) (x, y)')
        labels = np.ones(len(points), np.int64) if point_labels is None else \
            np.asarray(point_labels, np.int64).reshape(-1)
        colors = dict(POINT_COLORS, **(point_colors or {}))
        size = max(7, 4 * thickness + 3)
        for (x, y), label in zip(to_picture(points, scale_xy), labels):
            color = tuple(int(c) for c in colors.get(int(label), POINT_COLORS[1]))
            marker = cv2.MARKER_CROSS if label else cv2.MARKER_TILTED_CROSS
            cv2.drawMarker(out, (int(x), int(y)), color, marker, size, thickness, cv2.LINE_8)
    return out

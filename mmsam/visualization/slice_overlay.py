"""Labelled pictures of one slice: ground truth and prediction overlaid side by side, a legend.

Plain functions (numpy + OpenCV, no figure state), used by ``SliceVisualizationHook`` and
usable on their own::

    picture = render_slice_comparison(image, gt, pred, classes, palette, 'case0001 slice 012')
    cv2.imwrite('case0001.png', picture[..., ::-1])   # RGB -> BGR for OpenCV
"""
import math

import cv2
import numpy as np

from .prompt_drawing import draw_prompts

# Used when the data have no palette (or fewer colours than classes); index 0 is background.
DEFAULT_PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
                   (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
                   (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
                   (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195))

BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
ABSENT_TEXT_COLOR = (150, 150, 150)
FONT = cv2.FONT_HERSHEY_SIMPLEX
MARGIN = 8


def class_colors(palette, num_classes):
    """``num_classes`` RGB colours: ``palette``'s, then :data:`DEFAULT_PALETTE`'s, cycled.

    Args:
        palette (Sequence[Sequence[int]] | None): RGB colours per class (index 0: background).
        num_classes (int): number of classes, background included.

    Returns:
        list[tuple[int, int, int]]: one colour per class.
    """
    colors = [tuple(int(v) for v in c) for c in (palette or [])][:num_classes]
    for index in range(len(colors), num_classes):
        colors.append(DEFAULT_PALETTE[index % len(DEFAULT_PALETTE)])
    return colors


def volume_display_range(volume, percentiles=(0.5, 99.5), max_samples=1_000_000):
    """Intensity window for showing a (z-scored, HU, ...) volume: its ``percentiles``.

    Args:
        volume (ndarray): any shape, e.g. (D, H, W).
        percentiles (tuple[float, float]): low and high percentile.
        max_samples (int): at most this many (evenly strided) voxels are used.

    Returns:
        tuple[float, float]: (low, high), high > low.
    """
    flat = np.asarray(volume, dtype=np.float32).reshape(-1)
    if flat.size > max_samples:
        flat = flat[::int(math.ceil(flat.size / max_samples))]
    low, high = (float(v) for v in np.percentile(flat, percentiles))
    if not high > low:
        high = low + 1.0
    return low, high


def display_slice(image, low, high):
    """A float (H, W) slice as an (H, W, 3) uint8 gray picture, ``low`` -> 0, ``high`` -> 255."""
    scaled = (np.asarray(image, dtype=np.float32) - low) / (high - low)
    gray = (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def overlay_labels(image, label, colors, alpha=0.5):
    """Blend each foreground class of ``label`` onto ``image``, outlined in its full colour.

    Args:
        image (ndarray): (H, W, 3) uint8 RGB.
        label (ndarray): (H, W) integer class ids; 0 (background) is left as is.
        colors (Sequence[tuple]): RGB colour per class id.
        alpha (float): opacity of the fill (the outline is opaque, so that small structures
            stay visible and the image shows through large ones).

    Returns:
        ndarray: (H, W, 3) uint8.
    """
    out = image.astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    outlines = []
    for class_id in np.unique(label):
        if class_id == 0:
            continue
        mask = label == class_id
        color = np.asarray(colors[int(class_id) % len(colors)], np.float32)
        out[mask] = (1.0 - alpha) * out[mask] + alpha * color
        mask_u8 = mask.astype(np.uint8)
        outlines.append((mask & (cv2.erode(mask_u8, kernel, borderType=cv2.BORDER_CONSTANT,
                                           borderValue=0) == 0), color))
    for outline, color in outlines:
        out[outline] = color
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _text_height(scale=0.5, thickness=1):
    (_, height), baseline = cv2.getTextSize('Ag', FONT, scale, thickness)
    return height + baseline


def _put_text(canvas, text, x, y_top, color=TEXT_COLOR, scale=0.5, thickness=1):
    """Write ``text`` with its top-left corner at (x, y_top)."""
    (_, height), _ = cv2.getTextSize(text, FONT, scale, thickness)
    cv2.putText(canvas, text, (int(x), int(y_top + height)), FONT, scale, color, thickness,
                cv2.LINE_AA)


def draw_legend(class_names, colors, width, present=None):
    """A legend strip: a colour swatch and the name of each class, wrapped to ``width``.

    Args:
        class_names (Sequence[str]): names of the classes to list (background excluded).
        colors (Sequence[tuple]): their RGB colours, in the same order.
        width (int): width of the strip in pixels.
        present (Sequence[bool], optional): per class, whether it appears in the picture;
            absent classes are written in gray.

    Returns:
        ndarray: (h, width, 3) uint8 RGB, h depending on how many rows the names need.
    """
    swatch, gap, row_height = 14, 16, _text_height() + 8
    items = []
    for index, name in enumerate(class_names):
        (text_width, _), _ = cv2.getTextSize(str(name), FONT, 0.5, 1)
        items.append((str(name), colors[index], swatch + 6 + text_width,
                      True if present is None else bool(present[index])))
    rows, row, used = [], [], 0
    for item in items:
        needed = item[2] + (gap if row else 0)
        if row and used + needed > width - 2 * MARGIN:
            rows.append(row)
            row, used = [], 0
            needed = item[2]
        row.append(item)
        used += needed
    if row:
        rows.append(row)
    canvas = np.full((max(1, len(rows)) * row_height + MARGIN, width, 3), BACKGROUND, np.uint8)
    for r, row in enumerate(rows):
        x, y = MARGIN, MARGIN // 2 + r * row_height
        for name, color, item_width, is_present in row:
            top = y + (row_height - swatch) // 2
            cv2.rectangle(canvas, (x, top), (x + swatch - 1, top + swatch - 1), color, -1)
            cv2.rectangle(canvas, (x, top), (x + swatch - 1, top + swatch - 1), TEXT_COLOR, 1)
            _put_text(canvas, name, x + swatch + 6, y + (row_height - _text_height()) // 2 + 1,
                      TEXT_COLOR if is_present else ABSENT_TEXT_COLOR)
            x += item_width + gap
    return canvas


def panel_scale(height, width, min_panel_size):
    """Integer upsampling factor making the longer side of a panel >= ``min_panel_size``."""
    return max(1, int(math.ceil(min_panel_size / max(height, width, 1))))


def render_slice_comparison(image, gt, pred, classes, palette=None, title='', alpha=0.5,
                            min_panel_size=384, box=None, points=None, point_labels=None):
    """One picture: a title, then 'ground truth' and 'prediction' panels, then a legend.

    Each panel is the image with the label map overlaid semi-transparently (and outlined),
    upsampled by an integer factor (image: linear, labels: nearest) so that its longer side
    is at least ``min_panel_size`` pixels. Without ground truth only the prediction panel is
    drawn. The legend lists every foreground class in its colour, in gray the classes in
    neither panel. A prompted slice's box (and points) are drawn on every panel
    (:func:`mmsam.visualization.prompt_drawing.draw_prompts`, red box outline).

    Args:
        image (ndarray): (H, W, 3) uint8 RGB (or (H, W) uint8 gray).
        gt (ndarray | None): (H, W) ground-truth class ids.
        pred (ndarray): (H, W) predicted class ids.
        classes (Sequence[str]): class names, index 0 the background.
        palette (Sequence[Sequence[int]], optional): RGB colour per class.
        title (str): written above the panels, e.g. the case and slice.
        alpha (float): opacity of the overlays.
        min_panel_size (int): smallest longer side of a panel, in pixels.
        box (Sequence[float], optional): the box prompt (x0, y0, x1, y1), pixel indices of
            the slice.
        points (ndarray, optional): point prompts (N, 2) (x, y), pixel indices of the slice.
        point_labels (Sequence[int], optional): (N,) 1 foreground, 0 background.

    Returns:
        ndarray: (H_out, W_out, 3) uint8 RGB, W_out = panels * panel width + gaps + margins.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    pred = np.asarray(pred)
    height, width = pred.shape
    if image.shape[:2] != (height, width) or (gt is not None and np.shape(gt) != pred.shape):
        raise ValueError(f'render_slice_comparison: image {image.shape[:2]}, gt '
                         f'{None if gt is None else np.shape(gt)} and pred {pred.shape} must '
                         'share (H, W)')
    labels = [('ground truth', np.asarray(gt))] if gt is not None else []
    labels.append(('prediction', pred))
    num_classes = max(len(classes), int(max(lab.max() for _, lab in labels)) + 1)
    names = list(classes) + [f'class {i}' for i in range(len(classes), num_classes)]
    colors = class_colors(palette, num_classes)

    scale = panel_scale(height, width, min_panel_size)
    size = (width * scale, height * scale)  # cv2's (W, H)
    big_image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    panels = []
    for panel_title, label in labels:
        big_label = cv2.resize(label.astype(np.uint8 if num_classes <= 256 else np.int32),
                               size, interpolation=cv2.INTER_NEAREST)
        panel = overlay_labels(big_image, big_label, colors, alpha)
        if box is not None or points is not None:
            panel = draw_prompts(panel, box, points, point_labels, (scale, scale))
        panels.append((panel_title, panel))

    text_h = _text_height()
    title_h = text_h + MARGIN if title else 0
    panel_title_h = text_h + MARGIN // 2
    total_w = 2 * MARGIN + len(panels) * size[0] + (len(panels) - 1) * MARGIN
    present = [any((lab == c).any() for _, lab in labels) for c in range(1, num_classes)]
    legend = draw_legend(names[1:], colors[1:], total_w, present)
    total_h = MARGIN + title_h + panel_title_h + size[1] + MARGIN // 2 + legend.shape[0]
    canvas = np.full((total_h, total_w, 3), BACKGROUND, np.uint8)
    if title:
        _put_text(canvas, title, MARGIN, MARGIN)
    top = MARGIN + title_h
    for index, (panel_title, panel) in enumerate(panels):
        x = MARGIN + index * (size[0] + MARGIN)
        _put_text(canvas, panel_title, x, top)
        canvas[top + panel_title_h:top + panel_title_h + size[1], x:x + size[0]] = panel
    canvas[total_h - legend.shape[0]:] = legend
    return canvas

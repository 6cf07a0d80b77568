"""Pictures of multi-hypothesis predictions: the prompt, every annotator, every hypothesis."""
import os.path as osp

import cv2
import mmcv
import numpy as np
from mmengine.dist import master_only
from mmseg.visualization import SegLocalVisualizer

from mmsam.evaluation.functional.ged import d_avg, generalized_energy_distance
from mmsam.registry import VISUALIZERS
from .prompt_drawing import draw_prompts

# Distinct, colour-blind-friendly-ish RGB colours for the hypotheses (cycled when M > 8).
HYPOTHESIS_COLORS = ((255, 127, 14), (31, 119, 180), (148, 103, 189), (23, 190, 207),
                     (227, 119, 194), (188, 189, 34), (140, 86, 75), (127, 127, 127))


def _masks_of(data_sample, field):
    """The (N, H, W) bool masks of ``data_sample.<field>`` (PixelData), or None if absent."""
    if data_sample is None or field not in data_sample:
        return None
    data = getattr(data_sample, field).data
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    masks = np.asarray(data)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f'HypothesisVisualizer: {field}.data must be (N, H, W) masks, got '
                         f'shape {masks.shape}')
    return masks.astype(bool)


def _resize_masks(masks, size):
    """Nearest-neighbour resize of (N, h, w) bool masks to ``size`` = (H, W)."""
    if masks.shape[1:] == tuple(size):
        return masks
    height, width = size
    resized = [cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
               for m in masks]
    return np.stack(resized).astype(bool) if resized else np.zeros((0, height, width), bool)


@VISUALIZERS.register_module()
class HypothesisVisualizer(SegLocalVisualizer):
    """Draws one grid per image: the prompt, each annotator, each hypothesis, the consensus.

    Panels, left to right, all of the same size: the image with the prompt box
    (``prompt_box`` metainfo, ``(x0, y0, x1, y1)`` pixel indices of the image passed in) and
    any point prompts (``prompt_points`` (N, 2) (x, y), ``prompt_point_labels`` (N,)), one
    overlay per annotator mask (``gt_annotations``, "reader k"), one per hypothesis
    (``pred_hypotheses``, "hyp m") and the consensus (``pred_sem_seg``). Above them, a title
    strip with the image name and, when both annotations and predictions exist, the
    per-image GED and D_avg (the functional forms :func:`generalized_energy_distance` and
    :func:`d_avg` that ``GEDMetric`` averages; D_avg in percent). The prompts are drawn by
    :func:`mmsam.visualization.prompt_drawing.draw_prompts` (OpenCV, no anti-aliasing, so the
    outline has exactly ``box_color``); the rest with the visualizer's own ``set_image`` /
    ``draw_binary_masks`` / ``draw_texts``.

    Small images are upscaled so that labels stay readable: each panel's longer side is at
    least ``min_panel_size`` (by an integer factor, so masks stay crisp) and at most
    ``max_panel_size`` pixels.

    Args:
        name (str): instance name.
        image (ndarray, optional): an RGB image to start with.
        vis_backends (list[dict], optional): e.g. ``[dict(type='LocalVisBackend')]``.
        save_dir (str, optional): the backends write under ``<save_dir>/vis_data``.
        alpha (float): opacity of the mask overlays.
        min_panel_size (int): smallest longer side of a panel, in pixels.
        max_panel_size (int): largest longer side of a panel, in pixels.
        spacing (int): white gap between panels, in pixels.
        box_color (tuple): RGB colour of the prompt box.
        annotation_color (tuple): RGB colour of the annotators' masks.
        hypothesis_colors (Sequence[tuple], optional): RGB colours of the hypotheses, cycled.
        consensus_color (tuple): RGB colour of the consensus mask.
        empty_dice (float): Dice of an empty consensus against an empty annotation in the
            title's D_avg; keep it equal to the evaluator's ``GEDMetric.empty_dice`` (0).
        **kwargs: :class:`SegLocalVisualizer` arguments (``classes``, ``palette``, ...).
    """

    def __init__(self, name='visualizer', image=None, vis_backends=None, save_dir=None,
                 alpha=0.5, min_panel_size=256, max_panel_size=512, spacing=4,
                 box_color=(255, 0, 0), annotation_color=(0, 200, 0), hypothesis_colors=None,
                 consensus_color=(255, 0, 255), empty_dice=0.0, **kwargs):
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir,
                         alpha=alpha, **kwargs)
        if not 0 < min_panel_size <= max_panel_size:
            raise ValueError(f'HypothesisVisualizer needs 0 < min_panel_size <= max_panel_size, '
                             f'got {min_panel_size} and {max_panel_size}')
        self.min_panel_size = int(min_panel_size)
        self.max_panel_size = int(max_panel_size)
        self.spacing = int(spacing)
        self.box_color = tuple(box_color)
        self.annotation_color = tuple(annotation_color)
        self.hypothesis_colors = tuple(tuple(c) for c in (hypothesis_colors or HYPOTHESIS_COLORS))
        self.consensus_color = tuple(consensus_color)
        self.empty_dice = float(empty_dice)

    def panel_size(self, height, width):
        """(H, W) of each panel for an image of ``height`` x ``width`` pixels."""
        longer = max(height, width)
        if longer < self.min_panel_size:
            scale = float(int(np.ceil(self.min_panel_size / longer)))
        elif longer > self.max_panel_size:
            scale = self.max_panel_size / longer
        else:
            scale = 1.0
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))

    def _font_size(self, panel_height):
        # In points; the save figure has self.dpi pixels per inch (72 points).
        return max(8, int(panel_height / 18 * 72 / self.dpi))

    def _label(self, text, panel_height):
        """Writes ``text`` in the top-left corner of the current panel."""
        pad = max(2, panel_height // 64)
        self.draw_texts(text, np.array([pad, pad]), font_sizes=self._font_size(panel_height),
                        colors='white', vertical_alignments='top',
                        bboxes=dict(facecolor='black', alpha=0.6, pad=1.5, edgecolor='none'))

    def _mask_panel(self, image, mask, color, text):
        """``image`` with ``mask`` (H, W) overlaid in ``color`` and labelled ``text``."""
        self.set_image(image)
        self.draw_binary_masks(mask[None], colors=[color], alphas=self.alpha)
        self._label(text, image.shape[0])
        return self.get_image()

    def _prompt_panel(self, image, metainfo, scale_xy, text):
        """``image`` with the prompts of ``metainfo`` (pixel indices of the original image):
        ``prompt_box`` (x0, y0, x1, y1) and ``prompt_points`` (N, 2) (x, y) with optional
        ``prompt_point_labels`` (N,), drawn by :func:`draw_prompts` (exact colours)."""
        image = draw_prompts(image, box=metainfo.get('prompt_box'),
                             points=metainfo.get('prompt_points'),
                             point_labels=metainfo.get('prompt_point_labels'),
                             scale_xy=scale_xy, box_color=self.box_color)
        self.set_image(image)
        self._label(text, image.shape[0])
        return self.get_image()

    def scores(self, annotations, hypotheses):
        """Per-image ``(GED, D_avg in percent)`` of binary mask stacks, None if either is empty.

        Args:
            annotations (ndarray | None): (K, H, W) bool.
            hypotheses (ndarray | None): (M, H, W) bool.
        """
        if annotations is None or hypotheses is None or not len(annotations) or \
                not len(hypotheses):
            return None
        return (generalized_energy_distance(annotations, hypotheses),
                100.0 * d_avg(annotations, hypotheses, self.empty_dice))

    @master_only
    def draw_grid(self, name, image, data_sample=None, draw_gt=True, draw_pred=True):
        """The grid picture of one sample.

        Args:
            name (str): the title's image name.
            image (ndarray): (H, W, 3) RGB or (H, W) gray uint8 image.
            data_sample (SegDataSample, optional): with ``prompt_box`` (and optionally
                ``prompt_points`` / ``prompt_point_labels``) metainfo,
                ``gt_annotations`` (K, H, W), ``pred_hypotheses`` (M, H, W), ``pred_sem_seg``
                (1, H, W), any of them optional, masks at the image's size.
            draw_gt (bool): draw the annotators' panels.
            draw_pred (bool): draw the hypotheses' and consensus panels.

        Returns:
            ndarray: (title + H', n * W' + (n - 1) * spacing, 3) uint8 RGB with n panels of
            H' x W' pixels (see :meth:`panel_size`).
        """
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f'HypothesisVisualizer: expected an (H, W, 3) RGB or (H, W) image, '
                             f'got shape {image.shape}')
        image = np.clip(image, 0, 255).astype(np.uint8)
        height, width = image.shape[:2]
        ph, pw = self.panel_size(height, width)
        interpolation = cv2.INTER_LINEAR if ph >= height else cv2.INTER_AREA
        base = cv2.resize(image, (pw, ph), interpolation=interpolation) \
            if (ph, pw) != (height, width) else image.copy()

        annotations = _masks_of(data_sample, 'gt_annotations') if draw_gt else None
        hypotheses = _masks_of(data_sample, 'pred_hypotheses') if draw_pred else None
        consensus = _masks_of(data_sample, 'pred_sem_seg') if draw_pred else None
        scores = self.scores(annotations, hypotheses if hypotheses is not None else consensus)
        metainfo = data_sample.metainfo if data_sample is not None else {}
        prompts = [name for key, name in (('prompt_box', 'box'), ('prompt_points', 'points'))
                   if metainfo.get(key) is not None]
        panels = [self._prompt_panel(base, metainfo, (pw / width, ph / height),
                                     ' + '.join(['image'] + prompts))]
        for k, mask in enumerate(_resize_masks(annotations, (ph, pw))
                                 if annotations is not None else []):
            panels.append(self._mask_panel(base, mask, self.annotation_color, f'reader {k + 1}'))
        for m, mask in enumerate(_resize_masks(hypotheses, (ph, pw))
                                 if hypotheses is not None else []):
            color = self.hypothesis_colors[m % len(self.hypothesis_colors)]
            panels.append(self._mask_panel(base, mask, color, f'hyp {m + 1}'))
        if consensus is not None:
            panels.append(self._mask_panel(base, _resize_masks(consensus[:1], (ph, pw))[0],
                                           self.consensus_color, 'consensus'))

        title_font = self._font_size(ph)
        title_height = int(np.ceil(title_font * self.dpi / 72 * 2.0))
        n = len(panels)
        grid = np.full((title_height + ph, n * pw + (n - 1) * self.spacing, 3), 255, np.uint8)
        for i, panel in enumerate(panels):
            x = i * (pw + self.spacing)
            grid[title_height:, x:x + pw] = panel[:ph, :pw]
        title = name
        if scores is not None:
            title += f'    GED {scores[0]:.3f}    D_avg {scores[1]:.1f}%'
        self.set_image(grid)
        self.draw_texts(title, np.array([self.spacing + 2, title_height / 2]),
                        font_sizes=title_font, colors='black', vertical_alignments='center')
        return self.get_image()

    @master_only
    def add_datasample(self, name, image, data_sample=None, draw_gt=True, draw_pred=True,
                       show=False, wait_time=0, out_file=None, step=0, **kwargs):
        """Draw one sample's grid and show it, write it to ``out_file`` or to the backends.

        Args:
            name (str): the picture's name (the backends save ``<name>_<step>.png``).
            image (ndarray): (H, W, 3) RGB or (H, W) gray image at the masks' size.
            data_sample (SegDataSample, optional): see :meth:`draw_grid`; the title names
                the basename of its ``img_path`` (else ``name``).
            draw_gt (bool): draw the annotators.
            draw_pred (bool): draw the hypotheses and the consensus.
            show (bool): display the picture.
            wait_time (float): seconds to show it.
            out_file (str, optional): write the PNG there instead of to the backends.
            step (int): the step recorded by the backends.
            **kwargs: ignored (e.g. mmseg's ``with_labels``).

        Returns:
            ndarray: the grid, (H, W, 3) uint8 RGB; it is also the visualizer's image (None
            on processes other than the main one, which draw nothing).
        """
        title = name
        if data_sample is not None and data_sample.metainfo.get('img_path'):
            title = osp.splitext(osp.basename(data_sample.metainfo['img_path']))[0]
        grid = self.draw_grid(title, image, data_sample, draw_gt=draw_gt, draw_pred=draw_pred)
        self.set_image(grid)
        if show:
            self.show(grid, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(grid), out_file)
        else:
            self.add_image(name, grid, step)
        return grid

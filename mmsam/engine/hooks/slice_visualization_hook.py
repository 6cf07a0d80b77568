"""Labelled pictures of test slices (2D slice samples and 3D whole volumes), a few per case."""
import os.path as osp
import warnings

import cv2
import numpy as np
from mmseg.engine.hooks import SegVisualizationHook

from mmsam.registry import HOOKS
from mmsam.visualization.slice_choice import SLICE_CHOICES, choose_slices, slice_scores
from mmsam.visualization.slice_overlay import (display_slice, render_slice_comparison,
                                               volume_display_range)

# Candidates kept per case and slice drawn (2D streams), among which the drawn slices are
# spread out.
_CANDIDATES_PER_SLICE = 4


def batch_image(image, ori_shape):
    """The un-normalised (C, h, w) input tensor of one sample as an RGB uint8 image at
    ``ori_shape`` (the frame of its labels)."""
    img = image.detach().cpu().float().numpy().transpose(1, 2, 0)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    height, width = ori_shape[:2]
    if img.shape[:2] != (height, width):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return img


def _label_array(data_sample, field):
    """``data_sample.<field>.data`` as an integer numpy array, or None if absent."""
    if field not in data_sample:
        return None
    data = getattr(data_sample, field).data
    if hasattr(data, 'detach'):
        data = data.detach().cpu().numpy()
    return np.asarray(data)


@HOOKS.register_module()
class SliceVisualizationHook(SegVisualizationHook):
    """Labelled ground-truth / prediction pictures of a few slices of every ``interval``-th case.

    Each picture (:func:`mmsam.visualization.slice_overlay.render_slice_comparison`) shows the
    slice twice, ground truth and prediction overlaid semi-transparently, titled with the case
    and slice, at >= ``min_panel_size`` pixels per panel, above a legend of the data's class
    names and colours (``dataset_meta`` ``classes`` / ``palette``). It is written through the
    runner visualizer's backends (``add_image``); with ``LocalVisBackend`` to
    ``<save_dir>/vis_data/vis_image/<mode>_<case>_slice<NNN>_<step>.png`` (``tools/test.py
    --show-dir DIR`` sets save_dir to DIR and ``draw=True``).

    Two kinds of samples:

    - 2D slices (mmsam's ``.npz`` slices or slices of test volumes; inputs (C, H, W) 0-255,
      metainfo ``case_id``, ``slice_index``, ``num_slices``): the input is taken from the data
      batch (mmseg's hook re-reads ``img_path`` as an image file). A few candidate slices per
      case are kept as they come and the chosen ones drawn once the case is complete (or at
      the end of the epoch).
    - 3D whole volumes (metainfo ``is_volume=True``, inputs (C, D, H, W), e.g. z-scored,
      ``pred_sem_seg`` / ``gt_sem_seg`` (D, H, W) on the case's native grid): the slices are
      chosen in the volume; the first channel is shown between its 0.5 and 99.5 percentiles
      and resized to the labels' grid.

    Slices are chosen on the ground truth (the prediction when there is none):
    ``slice_choice='most_classes'`` takes those with the most foreground classes (ties: the
    larger smallest class), spread over the case; ``'middle'`` evenly spaced slices around
    the middle.

    Args:
        draw (bool): draw at all (``tools/test.py --show-dir`` sets it).
        interval (int): draw every ``interval``-th case, in the order cases first arrive.
        slices_per_case (int | None): slices drawn per case; None draws every slice.
        slice_choice (str): 'most_classes' or 'middle'.
        alpha (float): opacity of the overlays.
        min_panel_size (int): smallest longer side of a panel, in pixels.
        show (bool): also show each picture in a window.
        wait_time (float): seconds a shown picture stays.
        backend_args (dict, optional): mmseg's (unused here).
    """

    def __init__(self, draw=False, interval=1, slices_per_case=2, slice_choice='most_classes',
                 alpha=0.5, min_panel_size=384, show=False, wait_time=0., backend_args=None):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # mmseg's "draw is False" warning
            super().__init__(draw=draw, interval=interval, show=show, wait_time=wait_time,
                             backend_args=backend_args)
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'SliceVisualizationHook: interval must be an int >= 1 (every '
                             f'interval-th case is drawn), got {interval!r}')
        if slices_per_case is not None and (not isinstance(slices_per_case, int)
                                            or slices_per_case < 1):
            raise ValueError(f'SliceVisualizationHook: slices_per_case must be an int >= 1 '
                             f'or None (every slice), got {slices_per_case!r}')
        if slice_choice not in SLICE_CHOICES:
            raise ValueError(f'SliceVisualizationHook: slice_choice {slice_choice!r} is not '
                             f'one of {SLICE_CHOICES}')
        self.slices_per_case = slices_per_case
        self.slice_choice = slice_choice
        self.alpha = alpha
        self.min_panel_size = min_panel_size
        self._reset()

    def _reset(self):
        self._case_order = {}
        # case -> dict(candidates=[(score, index, image, gt, pred)], seen=int, depth=int|None)
        self._pending = {}

    def _before_epoch(self, runner, mode='train'):
        if mode != 'train':
            self._reset()

    def _after_epoch(self, runner, mode='train'):
        if mode == 'train' or self.draw is False:
            return
        for case in list(self._pending):
            self._flush(runner, case, mode)
        self._reset()

    def _after_iter(self, runner, batch_idx, data_batch, outputs, mode='val'):
        if self.draw is False or mode == 'train':
            return
        for image, output in zip(data_batch['inputs'], outputs):
            case = output.get('case_id')
            if case is None:
                img_path = output.get('img_path')
                case = osp.splitext(osp.basename(img_path))[0] if img_path else 'image'
            case = str(case)
            order = self._case_order.setdefault(case, len(self._case_order))
            if order % self.interval:
                continue
            if output.get('is_volume', False):
                self._draw_volume(runner, case, image, output, mode)
            else:
                self._add_slice(runner, case, image, output, mode)

    # 2D slices -----------------------------------------------------------------------------
    def _add_slice(self, runner, case, image, output, mode):
        pred = _label_array(output, 'pred_sem_seg')
        pred = pred.reshape(pred.shape[-2:])
        gt = _label_array(output, 'gt_sem_seg')
        gt = None if gt is None else gt.reshape(pred.shape)
        img = batch_image(image, pred.shape)
        index = int(output.get('slice_index', 0))
        depth = output.get('num_slices')
        if self.slices_per_case is None:
            self._draw(runner, case, index, img, gt, pred, mode)
            return
        entry = self._pending.setdefault(case, dict(candidates=[], seen=0, depth=depth))
        entry['seen'] += 1
        choice = self.slice_choice
        if choice == 'middle' and depth is None:
            choice = 'most_classes'
        if choice == 'middle':
            keep = index in choose_slices(None, range(depth), self.slices_per_case, 'middle',
                                          depth)
        else:
            keep = True
        if keep:
            score = tuple(slice_scores((pred if gt is None else gt)[None])[0])
            entry['candidates'].append((score, index, img, gt, pred))
            if choice == 'most_classes':
                limit = _CANDIDATES_PER_SLICE * self.slices_per_case
                # Memory: only the best few candidates of a case are held until it completes.
                entry['candidates'].sort(key=lambda c: (-c[0][0], -c[0][1], c[1]))
                del entry['candidates'][limit:]
        if depth is not None and entry['seen'] >= depth:
            self._flush(runner, case, mode)

    def _flush(self, runner, case, mode):
        entry = self._pending.pop(case, None)
        if not entry or not entry['candidates']:
            return
        candidates = entry['candidates']
        choice = 'middle' if self.slice_choice == 'middle' and entry['depth'] else 'most_classes'
        chosen = choose_slices(np.array([c[0] for c in candidates]), [c[1] for c in candidates],
                               self.slices_per_case, choice, entry['depth'])
        for _, index, img, gt, pred in sorted(candidates, key=lambda c: c[1]):
            if index in chosen:
                chosen.remove(index)  # a padding sampler may repeat a slice
                self._draw(runner, case, index, img, gt, pred, mode)

    # 3D volumes ----------------------------------------------------------------------------
    def _draw_volume(self, runner, case, image, output, mode):
        pred = _label_array(output, 'pred_sem_seg')
        gt = _label_array(output, 'gt_sem_seg')
        pred = pred.reshape(pred.shape[-3:])
        if gt is not None:
            gt = gt.reshape(gt.shape[-3:])
            if gt.shape != pred.shape:
                raise ValueError(f'SliceVisualizationHook: case {case!r} has gt_sem_seg '
                                 f'{gt.shape} but pred_sem_seg {pred.shape}; both must be on '
                                 'the native grid')
        volume = image.detach().cpu().float().numpy()
        if volume.ndim == 4:
            volume = volume[0]  # (C, D, H, W): the first channel is shown
        if volume.ndim != 3:
            raise ValueError(f'SliceVisualizationHook: case {case!r} is a whole volume '
                             f'(is_volume=True) but its input has shape {tuple(image.shape)}; '
                             'expected (C, D, H, W)')
        depth = pred.shape[0]
        count = depth if self.slices_per_case is None else self.slices_per_case
        chosen = choose_slices(slice_scores(pred if gt is None else gt), range(depth), count,
                               self.slice_choice, depth)
        low, high = volume_display_range(volume)
        for index in chosen:
            # The input may be on another (resampled) grid than the native-grid labels.
            source = min(volume.shape[0] - 1, int((index + 0.5) * volume.shape[0] / depth))
            img = display_slice(volume[source], low, high)
            if img.shape[:2] != pred.shape[1:]:
                img = cv2.resize(img, pred.shape[:0:-1], interpolation=cv2.INTER_LINEAR)
            self._draw(runner, case, index, img, None if gt is None else gt[index],
                       pred[index], mode)

    # drawing -------------------------------------------------------------------------------
    def _class_meta(self, runner, mode):
        meta = getattr(self._visualizer, 'dataset_meta', None) or {}
        if not meta.get('classes'):
            try:
                loader = getattr(runner, f'{mode}_dataloader', None)
                meta = getattr(getattr(loader, 'dataset', None), 'metainfo', None) or {}
            except Exception:  # a runner without that loop: unnamed classes
                meta = {}
        return list(meta.get('classes') or ['background']), meta.get('palette')

    def _draw(self, runner, case, index, img, gt, pred, mode):
        classes, palette = self._class_meta(runner, mode)
        name = f'{mode}_{case}_slice{index:03d}'
        picture = render_slice_comparison(img, gt, pred, classes, palette,
                                          title=f'{case}  slice {index}', alpha=self.alpha,
                                          min_panel_size=self.min_panel_size)
        if self.show:
            self._visualizer.show(picture, win_name=name, wait_time=self.wait_time)
        self._visualizer.add_image(name, picture, step=runner.iter)

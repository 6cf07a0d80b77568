"""Prompts for box-prompted heads (MedSAM, SAM-MCL, SeqSAM, P-SAM) on images and volumes:
boxes, clicks and a previous answer.

A prompts file (``tools/infer.py --prompts FILE.json``) is::

    {"boxes": [
        {"slice": 12, "box": [x0, y0, x1, y1]},
        {"slices": [20, 31], "box": [x0, y0, x1, y1]}
     ],
     "points": [
        {"point": [x, y, z], "label": 1},
        {"slice": 12, "point": [x, y], "label": 0}
     ],
     "previous_mask": "out/scan_logits.npz"}

* ``box``: pixels of the slice as it is stored, x along the columns (W, the file's i axis),
  y along the rows (H, the j axis), corners inclusive: 0 <= x0 <= x1 <= W - 1,
  0 <= y0 <= y1 <= H - 1.
* ``slice``: one slice index k (D, the file's third axis, 0-based); ``slices``: [a, b], the
  slices a <= k < b (Python's a:b). Neither: every slice (an image has one, slice 0).
* A slice named by several entries takes the last one. Slices without a box or a point are
  not segmented (label 0, agreement 0).
* ``points`` (optional): clicks, ``point`` [x, y, z] (z the slice index; 0 for a 2D image) or
  [x, y] with ``"slice": z`` (or alone, for a 2D image), in the same pixels as ``box``;
  ``label`` 1 foreground (the default) or 0 background. A slice may have clicks without a box.
* ``previous_mask`` (optional): the ``NAME_logits.npz`` a previous ``tools/infer.py
  --save-logits`` run wrote for the same input (its low-resolution logits are SAM's mask
  prompt of each slice they cover); a relative path is relative to the prompts file's folder.

An optional top-level ``"inputs": {"NAME": {"boxes": [...], "points": [...],
"previous_mask": ...}}`` gives per-file prompts, NAME being the input's file or folder name
(e.g. ``scan.nii.gz``); the top-level keys apply to inputs not listed there.
Files without ``points`` / ``previous_mask`` read exactly as before.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


class PromptError(ValueError):
    """A box prompt that cannot be used; the message names where it came from."""


def parse_slices(text: Optional[str],
                 where: str = '--slices') -> Optional[Tuple[int, int]]:
    """``'a:b'`` (or ``'k'``) -> (a, b) with b exclusive; ``None`` when text is None."""
    if text is None:
        return None
    try:
        if ':' in text:
            start, stop = text.split(':')
            return int(start), int(stop)
        k = int(text)
        return k, k + 1
    except ValueError:
        raise PromptError(f'{where} {text!r}: give a:b (slices a <= k < b) or one index k') \
            from None


def _check_box(box, where):
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise PromptError(f'{where}: box must be [x0, y0, x1, y1], got {box!r}')
    try:
        box = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise PromptError(f'{where}: box values must be numbers, got {box!r}') from None
    return box


def _check_point(item, here):
    """One ``points`` entry -> ((x, y), z | None, label, where)."""
    if not isinstance(item, dict) or 'point' not in item:
        raise PromptError(f'{here}: expected {{"point": [x, y, z], "label": 1}} or '
                          f'{{"point": [x, y], "slice": z, "label": 0}}, got {item!r}')
    unknown = set(item) - {'point', 'slice', 'label'}
    if unknown:
        raise PromptError(f'{here}: unknown keys {sorted(unknown)}')
    point = item['point']
    if not isinstance(point, (list, tuple)) or len(point) not in (2, 3) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in point):
        raise PromptError(f'{here}: "point" must be [x, y, z] or [x, y] (numbers), got '
                          f'{point!r}')
    z = None
    if len(point) == 3:
        if 'slice' in item:
            raise PromptError(f'{here}: give the slice either as the point\'s z or as '
                              '"slice", not both')
        z = point[2]
        if float(z) != int(z):
            raise PromptError(f'{here}: z = {z!r} must be a slice index (an integer)')
        z = int(z)
    elif 'slice' in item:
        z = item['slice']
        if not isinstance(z, int) or isinstance(z, bool):
            raise PromptError(f'{here}: "slice" must be an integer index, got {z!r}')
    label = item.get('label', 1)
    if label not in (0, 1) or isinstance(label, bool):
        raise PromptError(f'{here}: "label" must be 1 (foreground) or 0 (background), got '
                          f'{label!r}')
    return (float(point[0]), float(point[1])), z, int(label), here


def _box_entries(items, where):
    if not isinstance(items, list):
        raise PromptError(f'{where}: "boxes" must be a list')
    out = []
    for n, item in enumerate(items):
        here = f'{where} boxes[{n}]'
        if not isinstance(item, dict) or 'box' not in item:
            raise PromptError(f'{here}: expected {{"box": [x0, y0, x1, y1], "slice": k}} '
                              f'or {{..., "slices": [a, b]}}, got {item!r}')
        unknown = set(item) - {'box', 'slice', 'slices'}
        if unknown:
            raise PromptError(f'{here}: unknown keys {sorted(unknown)}')
        slices = None
        if 'slice' in item:
            if not isinstance(item['slice'], int):
                raise PromptError(f'{here}: "slice" must be an integer index')
            slices = (item['slice'], item['slice'] + 1)
        elif 'slices' in item:
            value = item['slices']
            if not (isinstance(value, list) and len(value) == 2 and
                    all(isinstance(v, int) for v in value)):
                raise PromptError(f'{here}: "slices" must be [a, b] (a <= k < b)')
            slices = tuple(value)
        out.append((_check_box(item['box'], here), slices, here))
    return out


def _point_entries(items, where):
    if not isinstance(items, list):
        raise PromptError(f'{where}: "points" must be a list')
    return [_check_point(item, f'{where} points[{n}]') for n, item in enumerate(items)]


def _previous_mask(value, where, folder):
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PromptError(f'{where}: "previous_mask" must be the path of a NAME_logits.npz '
                          f'written by tools/infer.py --save-logits, got {value!r}')
    path = value if osp.isabs(value) else osp.join(folder, value)
    if not osp.isfile(path):
        raise PromptError(f'{where}: "previous_mask" {value}: no such file ({path})')
    return path


def load_prompts(path: str) -> dict:
    """Read a prompts file.

    Returns:
        dict: ``default`` (box entries | None), ``inputs`` ({name: box entries}); each box
        entry is ``(box (4,), slices (a, b) | None, where)``. Also ``points`` and
        ``previous_mask``, each ``{'default': ..., 'inputs': {name: ...}}``: point entries
        ``((x, y), z | None, label, where)`` and a previous logits file path (or None).
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as err:
        raise PromptError(f'prompts file {path}: cannot read it ({err})') from err
    except ValueError as err:
        raise PromptError(f'prompts file {path}: not valid JSON ({err})') from err
    if not isinstance(data, dict) or not ({'boxes', 'points', 'previous_mask', 'inputs'} &
                                          set(data)):
        raise PromptError(f'prompts file {path}: expected an object with "boxes", "points", '
                          '"previous_mask" (and/or "inputs"); see mmsam/apis/prompts.py or '
                          'docs/interactive.md')
    folder = osp.dirname(osp.abspath(path))
    inputs = data.get('inputs', {})
    if not isinstance(inputs, dict) or not all(isinstance(v, (dict, type(None)))
                                               for v in inputs.values()):
        raise PromptError(f'prompts file {path}: "inputs" must map input names to '
                          '{"boxes": [...], "points": [...], "previous_mask": "..."}')
    where = f'prompts file {path}'
    listed = {name: (value or {}, f'{where} inputs[{name!r}]') for name, value in inputs.items()}
    for name, (value, here) in listed.items():
        unknown = set(value) - {'boxes', 'points', 'previous_mask'}
        if unknown:
            raise PromptError(f'{here}: unknown keys {sorted(unknown)}')
    return dict(
        default=_box_entries(data['boxes'], where) if 'boxes' in data else None,
        inputs={name: _box_entries(value.get('boxes', []), here)
                for name, (value, here) in listed.items()},
        points=dict(default=_point_entries(data.get('points', []), where),
                    inputs={name: _point_entries(value.get('points', []), here)
                            for name, (value, here) in listed.items()}),
        previous_mask=dict(default=_previous_mask(data.get('previous_mask'), where, folder),
                           inputs={name: _previous_mask(value.get('previous_mask'), here,
                                                        folder)
                                   for name, (value, here) in listed.items()}))


def command_line_points(values: Optional[Sequence[float]]) -> list:
    """``--points x y z label ...`` -> point entries like :func:`load_prompts`'s.

    Raises:
        PromptError: not groups of 4, a z that is not an integer or a label not 0 / 1.
    """
    if not values:
        return []
    if len(values) % 4:
        raise PromptError(f'--points takes groups of 4 numbers (x y z label), got '
                          f'{len(values)} numbers: {" ".join(f"{v:g}" for v in values)}')
    out = []
    for n in range(0, len(values), 4):
        x, y, z, label = values[n:n + 4]
        here = f'--points group {n // 4 + 1} ({x:g} {y:g} {z:g} {label:g})'
        if label not in (0, 1):
            raise PromptError(f'{here}: label must be 1 (foreground) or 0 (background)')
        out.append(_check_point(dict(point=[x, y, z], label=int(label)), here))
    return out


def command_line_prompts(box: Optional[Sequence[float]], slices: Optional[str],
                         points: Optional[Sequence[float]] = None,
                         previous_mask: Optional[str] = None) -> Optional[dict]:
    """``--box`` / ``--slices`` / ``--points`` / ``--previous-mask`` as a prompts dict like
    :func:`load_prompts`'s (or None when none is given)."""
    point_entries = command_line_points(points)
    if previous_mask is not None:
        previous_mask = _previous_mask(previous_mask, '--previous-mask', '.')
    if box is None:
        if slices is not None:
            raise PromptError('--slices goes with --box: it says which slices the box prompts')
        if not point_entries and previous_mask is None:
            return None
        boxes = None
    else:
        boxes = [(_check_box(list(box), '--box'), parse_slices(slices), '--box')]
    return dict(default=boxes, inputs={}, points=dict(default=point_entries, inputs={}),
                previous_mask=dict(default=previous_mask, inputs={}))


def with_extra_points(prompts: Optional[dict], points: Optional[Sequence[float]]) -> Optional[dict]:
    """``prompts`` (from a file) with the ``--points`` clicks added for every input."""
    extra = command_line_points(points)
    if not extra:
        return prompts
    section = prompts.setdefault('points', dict(default=[], inputs={}))
    section['default'] = list(section['default'] or []) + extra
    for name in prompts['inputs']:
        section['inputs'][name] = list(section['inputs'].get(name, [])) + extra
    return prompts


def _section_for(prompts, key, input_path, empty):
    """The ``key`` section's value for one input (its own when the file lists it)."""
    name = osp.basename(osp.normpath(input_path))
    section = prompts.get(key) or dict(default=empty, inputs={})
    if name in prompts['inputs']:
        return section['inputs'].get(name, empty)
    return section['default'] if section['default'] is not None else empty


def boxes_for(prompts: dict, input_path: str, shape: Tuple[int, int, int],
              required: bool = True) -> Dict[int, tuple]:
    """Per-slice boxes of one input, checked against its (D, H, W) shape.

    Args:
        prompts (dict): from :func:`load_prompts` / :func:`command_line_prompts`.
        input_path (str): the input (its base name selects ``inputs`` entries).
        shape (tuple[int]): (D, H, W); an image is (1, H, W).
        required (bool): raise when the input has no box (False: clicks may stand alone).

    Returns:
        dict[int, tuple]: slice index -> (x0, y0, x1, y1) in pixels of the slice.

    Raises:
        PromptError: a box outside the slice or a slice outside the volume; no box at all.
    """
    name = osp.basename(osp.normpath(input_path))
    entries = prompts['inputs'].get(name, prompts['default'])
    if not entries and not required:
        return {}
    if not entries:
        raise PromptError(f'{input_path}: no box prompt for it (prompts list '
                          f'{sorted(prompts["inputs"]) or "no inputs"} and no top-level boxes)')
    depth, height, width = shape
    boxes = {}
    for box, slices, where in entries:
        x0, y0, x1, y1 = box
        if not (0 <= x0 <= x1 <= width - 1 and 0 <= y0 <= y1 <= height - 1):
            raise PromptError(f'{where}: box {[f"{v:g}" for v in box]} lies outside the '
                              f'{width} x {height} (W x H) slices of {input_path}; need 0 <= x0 '
                              f'<= x1 <= {width - 1} and 0 <= y0 <= y1 <= {height - 1}')
        start, stop = (0, depth) if slices is None else slices
        if not 0 <= start < stop <= depth:
            raise PromptError(f'{where}: slices {start}:{stop} are not within the {depth} '
                              f'slices of {input_path} (need 0 <= a < b <= {depth})')
        for k in range(start, stop):
            boxes[k] = box
    return boxes


def click_list(prompts: dict, input_path: str,
               shape: Tuple[int, int, int]) -> List[Tuple[float, float, int, int]]:
    """The clicks of one input in the order given, checked against its (D, H, W) shape.

    Returns:
        list[tuple]: (x, y, z, label) per click.

    Raises:
        PromptError: a click outside the volume, or without a slice in a volume.
    """
    depth, height, width = shape
    out = []
    for (x, y), z, label, where in _section_for(prompts, 'points', input_path, []):
        if z is None:
            if depth != 1:
                raise PromptError(f'{where}: the point ({x:g}, {y:g}) has no slice; give '
                                  f'[x, y, z] or "slice": z ({input_path} has {depth} slices)')
            z = 0
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1 and 0 <= z < depth):
            raise PromptError(f'{where}: the point (x={x:g}, y={y:g}, z={z}) lies outside '
                              f'{input_path} ({width} x {height} x {depth}, W x H x D); need '
                              f'0 <= x <= {width - 1}, 0 <= y <= {height - 1}, '
                              f'0 <= z <= {depth - 1}')
        out.append((x, y, z, label))
    return out


def points_for(prompts: dict, input_path: str,
               shape: Tuple[int, int, int]) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Per-slice clicks of one input, checked against its (D, H, W) shape
    (:func:`click_list` grouped by slice).

    Args:
        prompts (dict): from :func:`load_prompts` / :func:`command_line_prompts`.
        input_path (str): the input (its base name selects ``inputs`` entries).
        shape (tuple[int]): (D, H, W); an image is (1, H, W).

    Returns:
        dict[int, tuple]: slice index -> (coords (N, 2) float32 (x, y), labels (N,) int64),
        in the order given.

    Raises:
        PromptError: a click outside the volume, or without a slice in a volume.
    """
    out = {}
    for x, y, z, label in click_list(prompts, input_path, shape):
        coords, labels = out.setdefault(z, ([], []))
        coords.append((x, y))
        labels.append(label)
    return {k: (np.asarray(c, np.float32).reshape(-1, 2), np.asarray(l, np.int64))
            for k, (c, l) in out.items()}


def previous_mask_for(prompts: Optional[dict], input_path: str) -> Optional[str]:
    """The previous logits file (``previous_mask``) of one input, or None."""
    if prompts is None:
        return None
    return _section_for(prompts, 'previous_mask', input_path, None)


def has_clicks(prompts: Optional[dict]) -> bool:
    """Whether ``prompts`` hold any click or previous mask (the interactive path)."""
    if prompts is None:
        return False
    points, previous = prompts.get('points') or {}, prompts.get('previous_mask') or {}
    return bool(points.get('default') or any(points.get('inputs', {}).values()) or
                previous.get('default') or any(previous.get('inputs', {}).values()))

"""Box prompts for box-prompted heads (MedSAM, SAM-MCL, SeqSAM, P-SAM) on images and volumes.

A prompts file (``tools/infer.py --prompts FILE.json``) is::

    {"boxes": [
        {"slice": 12, "box": [x0, y0, x1, y1]},
        {"slices": [20, 31], "box": [x0, y0, x1, y1]}
    ]}

* ``box``: pixels of the slice as it is stored, x along the columns (W, the file's i axis),
  y along the rows (H, the j axis), corners inclusive: 0 <= x0 <= x1 <= W - 1,
  0 <= y0 <= y1 <= H - 1.
* ``slice``: one slice index k (D, the file's third axis, 0-based); ``slices``: [a, b], the
  slices a <= k < b (Python's a:b). Neither: every slice (an image has one, slice 0).
* A slice named by several entries takes the last one. Slices without a box are not segmented
  (label 0, agreement 0).

An optional top-level ``"inputs": {"NAME": {"boxes": [...]}}`` gives per-file boxes, NAME being
the input's file or folder name (e.g. ``scan.nii.gz``); ``boxes`` at the top level apply to
inputs not listed there.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple


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


def load_prompts(path: str) -> dict:
    """Read a prompts file: {'default': entries | None, 'inputs': {name: entries}}.

    Each entry is ``(box (4,), slices (a, b) | None, where)``.
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as err:
        raise PromptError(f'prompts file {path}: cannot read it ({err})') from err
    except ValueError as err:
        raise PromptError(f'prompts file {path}: not valid JSON ({err})') from err
    if not isinstance(data, dict) or not ({'boxes', 'inputs'} & set(data)):
        raise PromptError(f'prompts file {path}: expected an object with "boxes" (and/or '
                          '"inputs"); see mmsam/apis/prompts.py or docs/deployment.md')

    def entries(items, where):
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

    inputs = data.get('inputs', {})
    if not isinstance(inputs, dict):
        raise PromptError(f'prompts file {path}: "inputs" must map input names to '
                          '{"boxes": [...]}')
    return dict(
        default=entries(data['boxes'], f'prompts file {path}') if 'boxes' in data else None,
        inputs={name: entries((value or {}).get('boxes', []),
                              f'prompts file {path} inputs[{name!r}]')
                for name, value in inputs.items()})


def command_line_prompts(box: Optional[Sequence[float]],
                         slices: Optional[str]) -> Optional[dict]:
    """``--box`` / ``--slices`` as a prompts dict like :func:`load_prompts`'s (or None)."""
    if box is None:
        if slices is not None:
            raise PromptError('--slices goes with --box: it says which slices the box prompts')
        return None
    return dict(default=[(_check_box(list(box), '--box'), parse_slices(slices), '--box')],
                inputs={})


def boxes_for(prompts: dict, input_path: str, shape: Tuple[int, int, int]) -> Dict[int, tuple]:
    """Per-slice boxes of one input, checked against its (D, H, W) shape.

    Args:
        prompts (dict): from :func:`load_prompts` / :func:`command_line_prompts`.
        input_path (str): the input (its base name selects ``inputs`` entries).
        shape (tuple[int]): (D, H, W); an image is (1, H, W).

    Returns:
        dict[int, tuple]: slice index -> (x0, y0, x1, y1) in pixels of the slice.

    Raises:
        PromptError: a box outside the slice or a slice outside the volume; no box at all.
    """
    name = osp.basename(osp.normpath(input_path))
    entries = prompts['inputs'].get(name, prompts['default'])
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

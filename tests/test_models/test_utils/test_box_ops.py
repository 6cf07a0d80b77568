"""Tests of normalised mask boxes and GIoU against brute-force loops and hand values."""
import itertools

import pytest
import torch

from mmsam.models.utils import box_giou, box_giou_pairwise, masks_to_boxes_normalized


def brute_force_box(mask):
    """(x_min/W, y_min/H, x_max/W, y_max/H) by scanning every pixel; zeros when empty."""
    h, w = mask.shape
    found = [(x, y) for y in range(h) for x in range(w) if mask[y, x]]
    if not found:
        return [0.0, 0.0, 0.0, 0.0]
    xs, ys = [x for x, _ in found], [y for _, y in found]
    return [min(xs) / w, min(ys) / h, max(xs) / w, max(ys) / h]


def brute_force_giou(a, b, eps=1e-6):
    """GIoU of two xyxy boxes from the textbook formula, in plain Python floats."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    inter = (max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
             * max(0.0, min(a[3], b[3]) - max(a[1], b[1])))
    union = area_a + area_b - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / (union + eps) - (hull - union) / (hull + eps)


def test_masks_to_boxes_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 7, 9, generator=g) < 0.08
    masks[0] = False  # empty
    masks[1] = False
    masks[1, 3, 4] = True  # single pixel: zero-size box at (4/9, 3/7)
    boxes = masks_to_boxes_normalized(masks)
    assert boxes.dtype == torch.float32 and boxes.shape == (6, 4)
    expected = torch.tensor([brute_force_box(m) for m in masks])
    torch.testing.assert_close(boxes, expected)
    assert boxes[0].tolist() == [0.0] * 4
    torch.testing.assert_close(boxes[1], torch.tensor([4 / 9, 3 / 7, 4 / 9, 3 / 7]))
    # Non-bool masks: any non-zero value is foreground.
    torch.testing.assert_close(masks_to_boxes_normalized(masks.float() * 3), boxes)


def test_full_mask_box_uses_max_index():
    boxes = masks_to_boxes_normalized(torch.ones(1, 4, 8, dtype=torch.bool))
    assert boxes.tolist() == [[0.0, 0.0, 7 / 8, 3 / 4]]


HAND_BOXES = torch.tensor([
    [0.1, 0.1, 0.5, 0.5],
    [0.3, 0.2, 0.9, 0.6],  # overlaps box 0
    [0.6, 0.7, 0.8, 0.9],  # disjoint from box 0
    [0.1, 0.1, 0.5, 0.5],  # identical to box 0
    [0.0, 0.0, 0.0, 0.0],  # empty-mask box
], dtype=torch.float64)


def test_giou_by_hand():
    giou = box_giou_pairwise(HAND_BOXES[:1], HAND_BOXES[1:3]).squeeze(0)
    # box 0 vs 1: inter 0.2*0.3 = 0.06, union 0.16+0.24-0.06 = 0.34, hull 0.8*0.5 = 0.4
    expected_01 = 0.06 / 0.34 - (0.4 - 0.34) / 0.4
    # box 0 vs 2: no overlap, union 0.16+0.04 = 0.2, hull 0.7*0.8 = 0.56
    expected_02 = 0 - (0.56 - 0.2) / 0.56
    torch.testing.assert_close(giou, torch.tensor([expected_01, expected_02], dtype=torch.float64),
                               rtol=0, atol=1e-5)


def test_giou_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    corners = torch.rand(7, 2, 2, generator=g, dtype=torch.float64).sort(dim=1).values
    random_boxes = torch.cat([corners[:, 0], corners[:, 1]], dim=1)  # x1<=x2, y1<=y2
    boxes = torch.cat([HAND_BOXES, random_boxes])
    pairwise = box_giou_pairwise(boxes, boxes[:6])
    assert pairwise.shape == (len(boxes), 6)
    for i, j in itertools.product(range(len(boxes)), range(6)):
        assert pairwise[i, j].item() == pytest.approx(
            brute_force_giou(boxes[i].tolist(), boxes[j].tolist()), rel=1e-12, abs=1e-12)
    aligned = box_giou(boxes, boxes.flip(0))
    torch.testing.assert_close(aligned, torch.stack(
        [box_giou_pairwise(boxes[i:i + 1], boxes.flip(0)[i:i + 1])[0, 0]
         for i in range(len(boxes))]))
    assert pairwise[0, 3] == pytest.approx(1.0, abs=1e-5)  # identical boxes
    assert torch.isfinite(box_giou_pairwise(HAND_BOXES[4:], HAND_BOXES[4:])).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match='aligned boxes'):
        box_giou(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        masks_to_boxes_normalized(torch.zeros(4, 4))

"""Normalised xyxy boxes from masks and generalised IoU (MaskSAM's box prompts and costs)."""
import torch


def masks_to_boxes_normalized(masks):
    """Tight boxes of binary masks, normalised by the mask size, as MaskSAM's code does.

    The box is (x_min / W, y_min / H, x_max / W, y_max / H) with x_max, y_max the largest
    foreground indices (not index + 1), so a one-pixel mask has zero width. Empty masks give
    the all-zero box.

    Args:
        masks (Tensor): (N, H, W) masks, any non-zero value is foreground.

    Returns:
        Tensor: (N, 4) float32 boxes in [0, 1).
    """
    if masks.dim() != 3 or 0 in masks.shape[1:]:
        raise ValueError(f'masks_to_boxes_normalized expects (N, H, W) masks with H, W > 0, '
                         f'got shape {tuple(masks.shape)}')
    h, w = masks.shape[1:]
    masks = masks != 0
    rows, cols = masks.any(2), masks.any(1)  # (N, H), (N, W)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    # Fill absent rows/columns with values that never win the min/max.
    y_min = torch.where(rows, ys, h).amin(1, keepdim=True)
    y_max = torch.where(rows, ys, -1).amax(1, keepdim=True)
    x_min = torch.where(cols, xs, w).amin(1, keepdim=True)
    x_max = torch.where(cols, xs, -1).amax(1, keepdim=True)
    boxes = torch.cat([x_min / w, y_min / h, x_max / w, y_max / h], dim=1).float()
    return torch.where(rows.any(1, keepdim=True), boxes, torch.zeros_like(boxes))


def _area(boxes):
    # Not clamped, as DETR's box_area: a learned box with x2 < x1 gets a negative area.
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _giou(a, b, eps):
    """GIoU of broadcastable (..., 4) xyxy boxes."""
    top_left = torch.maximum(a[..., :2], b[..., :2])
    bottom_right = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = _area(a) + _area(b) - inter
    iou = inter / (union + eps)
    enclose_wh = (torch.maximum(a[..., 2:], b[..., 2:])
                  - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0)
    enclosure = enclose_wh.prod(-1)
    return iou - (enclosure - union) / (enclosure + eps)


def box_giou_pairwise(boxes1, boxes2, eps=1e-6):
    """Generalised IoU of every pair of xyxy boxes.

    GIoU = IoU - (|C| - |A u B|) / |C|, C the smallest enclosing box, with ``eps`` added to
    the union and enclosure areas so zero-size (empty-mask) boxes give finite values.

    Args:
        boxes1 (Tensor): (N, 4) xyxy boxes.
        boxes2 (Tensor): (M, 4) xyxy boxes.
        eps (float): added to unions and enclosures.

    Returns:
        Tensor: (N, M) GIoU in [-1, 1].
    """
    return _giou(boxes1[:, None, :], boxes2[None, :, :], eps)


def box_giou(boxes1, boxes2, eps=1e-6):
    """Generalised IoU of aligned pairs of xyxy boxes (see :func:`box_giou_pairwise`).

    Args:
        boxes1 (Tensor): (N, 4) xyxy boxes.
        boxes2 (Tensor): (N, 4) xyxy boxes.
        eps (float): added to unions and enclosures.

    Returns:
        Tensor: (N,) GIoU of boxes1[i] and boxes2[i].
    """
    if boxes1.shape != boxes2.shape:
        raise ValueError(f'box_giou needs aligned boxes of one shape, got '
                         f'{tuple(boxes1.shape)} and {tuple(boxes2.shape)}')
    return _giou(boxes1, boxes2, eps)

"""``scipy.ndimage.zoom`` as the official SAMed / H-SAM code uses it, on tensors.

The official datasets make the loss's low-resolution labels with ``zoom(label, order=0)``
and the official ``test_single_volume`` resizes each slice with ``zoom(slice, order=3)`` and
the predicted labels back with ``zoom(pred, order=0)``. ``zoom`` (``grid_mode=False``) maps
output pixel j to input coordinate ``j * (n_in - 1) / (n_out - 1)``: corner pixels stay on
corner pixels, unlike ``F.interpolate(mode='nearest')`` (``floor(j * n_in / n_out)``), which
picks other pixels (150 of 1024 labels differ at 128 -> 32).
"""
import numpy as np
import torch


def zoom_nearest(labels, shape, cval=0):
    """Resize the last two axes of ``labels`` as ``scipy.ndimage.zoom(order=0)`` does.

    Output pixel j reads input pixel ``floor(c + 0.5)`` at ``c = j * ((n_in - 1) /
    (n_out - 1))`` in float64 (exact integer indexing, any dtype and device). scipy's quirk
    is kept: where rounding puts ``c`` above ``n_in - 1`` (the last pixel for some sizes,
    e.g. 512 -> 224 and 64 -> 28), its default ``mode='constant'`` gives ``cval`` there.

    Args:
        labels (Tensor): (..., h, w) class ids (or any values).
        shape (tuple[int, int]): (H, W) output size.
        cval (int | float): the value past the edge (scipy's default 0).

    Returns:
        Tensor: (..., H, W), the dtype and device of ``labels``.
    """
    out = labels
    for axis, size_in, size_out in zip((-2, -1), labels.shape[-2:], shape):
        size_out = int(size_out)
        if size_in == size_out:
            continue
        scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        coord = torch.arange(size_out, dtype=torch.float64) * scale
        index = torch.floor(coord + 0.5).long().clamp_(0, size_in - 1).to(labels.device)
        dim = out.dim() + axis
        out = out.index_select(dim, index)
        outside = (coord > size_in - 1).to(labels.device)
        if outside.any():
            view = [1] * out.dim()
            view[dim] = size_out
            out = out.masked_fill(outside.view(view), cval)
    return out


def zoom_spline(images, shape, order=3):
    """Resize the last two axes of ``images`` with ``scipy.ndimage.zoom(order=order)``.

    Each (h, w) plane is zoomed by ``(H / h, W / w)`` with scipy's defaults (spline prefilter,
    ``mode='constant'``, ``grid_mode=False``), as the official ``test_single_volume`` zooms a
    slice (order 3). scipy runs on the CPU in float64; the result returns to the input's
    device and dtype.

    Args:
        images (Tensor): (..., h, w) float.
        shape (tuple[int, int]): (H, W) output size.
        order (int): spline order (3: the official image zoom).

    Returns:
        Tensor: (..., H, W).
    """
    from scipy.ndimage import zoom
    (h, w), (size_h, size_w) = images.shape[-2:], (int(shape[0]), int(shape[1]))
    if (h, w) == (size_h, size_w):
        return images
    planes = images.detach().reshape(-1, h, w).to('cpu', torch.float64).numpy()
    factors = (size_h / h, size_w / w)
    out = np.stack([zoom(plane, factors, order=order) for plane in planes])
    if out.shape[-2:] != (size_h, size_w):  # scipy rounds h * factor; guard the contract
        raise ValueError(f'scipy zoom gave {out.shape[-2:]} for {(h, w)} -> '
                         f'{(size_h, size_w)}')
    out = torch.from_numpy(out).to(images.device, images.dtype)
    return out.reshape(*images.shape[:-2], size_h, size_w)

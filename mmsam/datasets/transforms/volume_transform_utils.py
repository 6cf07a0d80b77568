"""Helpers shared by the 3D transforms: argument checks and channel views of (D, H, W) volumes.

A volume image is ``results['img']`` of shape (D, H, W) (one channel) or (C, D, H, W); label
maps (``results['seg_fields']``, e.g. ``gt_seg_map``) are (D, H, W) and must stay aligned with
the image's last three axes.
"""
import numbers


def channels_view(img, where='img'):
    """(C, D, H, W) view of a (D, H, W) or (C, D, H, W) image (no copy)."""
    if img.ndim == 3:
        return img[None]
    if img.ndim == 4:
        return img
    raise ValueError(f'{where}: expected a (D, H, W) or (C, D, H, W) volume, got shape '
                     f'{img.shape}; load it with LoadVolume')


def like_input(channels, img):
    """Undo :func:`channels_view`: (C, D, H, W) back to the rank of ``img``."""
    return channels[0] if img.ndim == 3 else channels


def check_shape3(name, value):
    """Return ``value`` as a tuple of three positive ints (T, H, W), raising ValueError."""
    if (isinstance(value, (str, bytes)) or not hasattr(value, '__len__') or len(value) != 3 or
            not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                    for v in value)):
        raise ValueError(f'{name} must be three positive ints (T, H, W), got {value!r}')
    return tuple(int(v) for v in value)


def aligned_seg_fields(results, transform):
    """Keys of ``results['seg_fields']``, checked to share the image's (D, H, W) grid."""
    shape = results['img'].shape[-3:]
    keys = list(results.get('seg_fields', []))
    for key in keys:
        if results[key].shape != shape:
            raise ValueError(
                f'{transform}: results[{key!r}] has shape {results[key].shape}, the image '
                f'{shape}; a spatial transform needs them on one grid (a label loaded with '
                'LoadVolume(native_label=True) is on the native grid: use that only in test '
                'pipelines, which have no spatial transforms)')
    return keys


def update_shape(results):
    """Record the image's current (D, H, W) as ``img_shape``."""
    results['img_shape'] = tuple(results['img'].shape[-3:])
    return results

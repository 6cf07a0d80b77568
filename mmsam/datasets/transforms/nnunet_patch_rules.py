"""nnU-Net 2.5.1's rules for the training patch: "dummy 2D" mode, rotation range, crop window.

nnU-Net decides these in the trainer's
``configure_rotation_dummyDA_mirroring_and_inital_patch_size`` (not importable without
``cc3d``); this module restates the rules and
``tests/test_nnunet_augmentation_equivalence.py`` checks them against nnunetv2's
``get_patch_size``.
"""
import numpy as np

# nnunetv2.configuration.ANISO_THRESHOLD: a patch is anisotropic when max / depth exceeds it
ANISO_THRESHOLD = 3
# the scale range nnU-Net passes to get_patch_size (not the (0.7, 1.4) it augments with)
MARGIN_MIN_SCALE = 0.85


def nnunet_dummy_2d(patch_size):
    """Whether nnU-Net augments a (T, H, W) patch slice by slice ("dummy 2D"): max / T > 3."""
    return max(patch_size) / patch_size[0] > ANISO_THRESHOLD


def nnunet_rotation_range(patch_size):
    """nnU-Net's rotation range in degrees: (-180, 180) in dummy 2D mode, else (-30, 30)."""
    return (-180., 180.) if nnunet_dummy_2d(patch_size) else (-30., 30.)


def _rotation(axis, angle):
    """The right-handed rotation matrix about ``axis`` (nnU-Net multiplies row vectors by it)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    matrix = np.eye(3)
    # about y the (x, z) plane is ordered against the right-hand rule
    sign = -1. if axis == 1 else 1.
    matrix[i, i], matrix[j, j] = c, c
    matrix[i, j], matrix[j, i] = -sign * s, sign * s
    return matrix


def nnunet_initial_patch_size(patch_size, rotation_deg=None, min_scale=MARGIN_MIN_SCALE):
    """The enlarged crop window nnU-Net loads before rotating and scaling a patch.

    nnU-Net's rule (``get_patch_size``): the rotation angle is capped at 90 degrees; the
    patch's corner vector (T, H, W) is turned by that angle about each axis in turn, and each
    axis takes the largest absolute extent seen (the patch itself included); the result is
    divided by ``min_scale`` (0.85) and truncated to int. In dummy 2D mode the depth stays T.
    A (26, 256, 256) patch gives (26, 301, 301): a 90-degree turn only swaps extents, so the
    margin is the scale's 1 / 0.85, not sqrt(2).

    Args:
        patch_size (tuple[int]): (T, H, W) of the final patch.
        rotation_deg (float, optional): largest absolute rotation in degrees; default:
            nnU-Net's (180 in dummy 2D mode, else 30).
        min_scale (float): smallest scale nnU-Net plans the margin for. Default: 0.85.

    Returns:
        tuple[int]: (T', H', W') of the window.
    """
    if rotation_deg is None:
        rotation_deg = max(abs(a) for a in nnunet_rotation_range(patch_size))
    angle = min(np.pi / 2, abs(rotation_deg) / 360 * 2. * np.pi)
    corner = np.asarray(patch_size, dtype=float)
    extent = corner.copy()
    for axis in range(3):
        extent = np.maximum(extent, np.abs(corner @ _rotation(axis, angle)))
    window = (extent / min_scale).astype(int)
    if nnunet_dummy_2d(patch_size):
        window[0] = patch_size[0]
    return tuple(int(v) for v in window)

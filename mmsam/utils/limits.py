"""Input-size limits: a file header can claim a volume far larger than memory.

``check_voxel_limit`` is called with the shape read from a header, before any voxel is read, by
the converters and by ``tools/infer.py``. The limit is ``MAX_VOXELS`` unless the caller passes
one or the environment sets ``MMSAM_MAX_VOXELS``.
"""
import os

#: 2**30 voxels: 4 GiB as float32, several times a whole-body CT (512 x 512 x 1000 = 2.6e8).
MAX_VOXELS = 2**30


def max_voxels(limit=None):
    """The voxel limit in force: ``limit`` if given, else ``$MMSAM_MAX_VOXELS``, else the default."""
    if limit is not None:
        return int(limit)
    value = os.environ.get('MMSAM_MAX_VOXELS')
    if value is None:
        return MAX_VOXELS
    try:
        return int(float(value))
    except ValueError:
        raise ValueError(f'MMSAM_MAX_VOXELS={value!r} is not a number of voxels') from None


def check_voxel_limit(shape, path, limit=None, error=ValueError):
    """Raise ``error`` naming ``path`` when a volume of ``shape`` exceeds the voxel limit.

    Args:
        shape (Sequence[int]): the volume's shape as its header states it.
        path (str): the file, named in the message.
        limit (int, optional): overrides ``$MMSAM_MAX_VOXELS`` / :data:`MAX_VOXELS`.
        error (type): the exception class to raise (a converter passes its own).
    """
    voxels = 1
    for n in shape:
        voxels *= int(n)
    allowed = max_voxels(limit)
    if voxels > allowed:
        raise error(f'{path}: its header claims a volume of shape {tuple(int(n) for n in shape)} '
                    f'= {voxels:,} voxels, over the limit of {allowed:,}; if the file is right, '
                    'raise the limit with MMSAM_MAX_VOXELS=<voxels> (or --max-voxels), '
                    'otherwise the header is damaged')
    return voxels

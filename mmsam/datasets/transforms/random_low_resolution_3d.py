"""nnU-Net 2.5.1's simulated low resolution: nearest down-sampling, linear up-sampling back."""
from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform, with_probability
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomLowResolution3D(BatchgeneratorsV2Transform):
    """Blur detail by a nearest down-sampling and a linear up-sampling, in-plane by default.

    Calls batchgeneratorsv2's ``SimulateLowResolutionTransform`` inside its
    ``RandomTransform``, as nnU-Net 2.5.1 for an anisotropic ("dummy 2D") patch:
    ``scale=(0.5, 1)``, ``synchronize_channels=False``, ``synchronize_axes=True``,
    ``ignore_axes=(0,)``, ``p_per_channel=0.5``, ``apply_probability=0.25``. Per chosen
    channel one zoom U(``zoom_range``); the ``axes`` are shrunk to round(n * zoom) voxels
    (``nearest-exact``) and resized back (trilinear, ``align_corners=False``); the other axes
    keep their size.

    nnU-Net passes ``ignore_axes=None`` for near-isotropic patches, which in
    batchgeneratorsv2 0.2.3 sets every scale to 1 (the transform changes nothing);
    ``axes=(0, 1, 2)`` here down-samples all three axes instead.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.25.
        zoom_range (tuple[float]): range of the down-sampling factor, in (0, 1]. Default:
            (0.5, 1).
        prob_per_channel (float): probability per channel, once applied. Default: 0.5.
        axes (tuple[int]): axes of (D, H, W) to down-sample. Default: (1, 2), in-plane.
    """

    def __init__(self, prob=0.25, zoom_range=(0.5, 1.), prob_per_channel=0.5, axes=(1, 2)):
        from batchgeneratorsv2.transforms.spatial.low_resolution import \
            SimulateLowResolutionTransform
        self.prob = check_prob('prob', prob)
        self.zoom_range = check_range('zoom_range', zoom_range, minimum=0, strict=True)
        self.prob_per_channel = check_prob('prob_per_channel', prob_per_channel)
        if not set(axes) <= {0, 1, 2} or len(set(axes)) != len(axes):
            raise ValueError(f'axes must be distinct axes of (D, H, W) in 0..2, got {axes!r}')
        self.axes = tuple(int(a) for a in axes)
        self.bg_transform = with_probability(SimulateLowResolutionTransform(
            scale=self.zoom_range, synchronize_channels=False, synchronize_axes=True,
            ignore_axes=tuple(a for a in range(3) if a not in self.axes), allowed_channels=None,
            p_per_channel=self.prob_per_channel), self.prob)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, zoom_range={self.zoom_range}, '
                f'prob_per_channel={self.prob_per_channel}, axes={self.axes})')

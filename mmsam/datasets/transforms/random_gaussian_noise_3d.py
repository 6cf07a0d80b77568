"""nnU-Net 2.5.1's additive Gaussian noise augmentation for volumes (batchgeneratorsv2)."""
from mmsam.registry import TRANSFORMS
from .batchgeneratorsv2_transform import BatchgeneratorsV2Transform, with_probability
from .random_rotate_scale import check_prob, check_range


@TRANSFORMS.register_module()
class RandomGaussianNoise3D(BatchgeneratorsV2Transform):
    """Add zero-mean Gaussian noise with probability ``prob``.

    Calls batchgeneratorsv2's ``GaussianNoiseTransform`` inside its ``RandomTransform``, as
    nnU-Net 2.5.1's ``get_training_transforms``: ``noise_variance=(0, 0.1)``,
    ``p_per_channel=1``, ``synchronize_channels=True``, ``apply_probability=0.1``. The drawn
    value is used as the standard deviation (``torch.normal``), whatever nnU-Net's name says;
    with ``synchronize_channels`` one sigma and one noise field serve every chosen channel.

    Required keys: ``img``. Modified keys: ``img``.

    Args:
        prob (float): probability per sample. Default: 0.1.
        std_range (tuple[float]): range of the noise standard deviation. Default: (0, 0.1).
        prob_per_channel (float): probability per channel, once applied. Default: 1.
        synchronize_channels (bool): one sigma and noise field for all channels. Default: True.
    """

    def __init__(self, prob=0.1, std_range=(0., 0.1), prob_per_channel=1.,
                 synchronize_channels=True):
        from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
        self.prob = check_prob('prob', prob)
        self.std_range = check_range('std_range', std_range, minimum=0)
        self.prob_per_channel = check_prob('prob_per_channel', prob_per_channel)
        self.synchronize_channels = bool(synchronize_channels)
        self.bg_transform = with_probability(GaussianNoiseTransform(
            noise_variance=self.std_range, p_per_channel=self.prob_per_channel,
            synchronize_channels=self.synchronize_channels), self.prob)

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, std_range={self.std_range}, '
                f'prob_per_channel={self.prob_per_channel}, '
                f'synchronize_channels={self.synchronize_channels})')

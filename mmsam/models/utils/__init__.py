from .latent_gaussian_encoder import LatentGaussianEncoder
from .sam_mask_decoder import SAMMaskDecoder

__all__ = ['LatentGaussianEncoder', 'SAMMaskDecoder']

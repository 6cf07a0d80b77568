from .box_ops import box_giou, box_giou_pairwise, masks_to_boxes_normalized
from .latent_gaussian_encoder import LatentGaussianEncoder
from .mask_refine_3d import MaskRefine3D
from .point_sampling import sample_uncertain_points
from .sam_mask_decoder import SAMMaskDecoder

__all__ = ['LatentGaussianEncoder', 'MaskRefine3D', 'SAMMaskDecoder', 'box_giou',
           'box_giou_pairwise', 'masks_to_boxes_normalized', 'sample_uncertain_points']

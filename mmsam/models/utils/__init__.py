from .box_ops import box_giou, box_giou_pairwise, masks_to_boxes_normalized
from .hsam_class_map_attention import HSAMClassMapAttention
from .hsam_mask_decoder import HSAMMaskDecoder
from .hsam_masked_attention import HSAMMaskedAttention
from .hsam_stage2_decoder import HSAMStage2Decoder
from .hsam_two_way_transformer import HSAMTwoWayTransformer
from .latent_gaussian_encoder import LatentGaussianEncoder
from .mask_refine_3d import MaskRefine3D
from .point_sampling import sample_uncertain_points
from .sam2_mask_decoder import SAM2MaskDecoder
from .sam_mask_decoder import SAMMaskDecoder

__all__ = ['HSAMClassMapAttention', 'HSAMMaskDecoder', 'HSAMMaskedAttention', 'HSAMStage2Decoder',
           'HSAMTwoWayTransformer', 'LatentGaussianEncoder', 'MaskRefine3D', 'SAM2MaskDecoder',
           'SAMMaskDecoder',
           'box_giou', 'box_giou_pairwise', 'masks_to_boxes_normalized', 'sample_uncertain_points']

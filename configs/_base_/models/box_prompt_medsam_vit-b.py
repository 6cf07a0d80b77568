# Box-prompted SAM ViT-B with MedSAM's weights (Ma et al.): same key layout as SAM's file.
_base_ = ['./box_prompt_sam_vit-b.py']
sam_checkpoint = 'checkpoints/medsam_vit_b.pth'
# MedSAM was trained on images min-max scaled to [0, 1], not on SAM's normalisation.
data_preprocessor = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(checkpoint=sam_checkpoint),
    decode_head=dict(prompt_encoder=dict(checkpoint=sam_checkpoint),
                     mask_decoder=dict(checkpoint=sam_checkpoint)),
)

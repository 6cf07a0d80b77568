# MaskSAM on SAM ViT-H (the official code's backbone for Synapse and AMOS), otherwise as
# masksam_vit-b.py.
_base_ = ['./masksam_vit-b.py']
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
model = dict(
    backbone=dict(arch='vit_h', out_indices=(7, 15, 23, 31), checkpoint=sam_checkpoint),
    neck=dict(embed_dim=1280),
    decode_head=dict(prompt_encoder=dict(checkpoint=sam_checkpoint),
                     mask_decoder=dict(checkpoint=sam_checkpoint)),
)

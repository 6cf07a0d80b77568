# MaskSAM on AMOS22 CT, fold 0, with SAM ViT-B (the paper's stated backbone; the official code
# uses ViT-H): masksam_vit-h_amos_fold0.py with the ViT-B encoder (12 blocks, global attention
# at 2, 5, 8, 11, width 768) and its checkpoint.
# Needs checkpoints/sam_vit_b_01ec64.pth (official SAM ViT-B, linked in the segment-anything
# README's "Model Checkpoints") and data/amos (see configs/_base_/datasets/amos_3d.py).
_base_ = ['./masksam_vit-h_amos_fold0.py']
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
model = dict(
    backbone=dict(arch='vit_b', out_indices=(2, 5, 8, 11), checkpoint=sam_checkpoint),
    neck=dict(embed_dim=768),
    decode_head=dict(prompt_encoder=dict(checkpoint=sam_checkpoint),
                     mask_decoder=dict(checkpoint=sam_checkpoint)),
)

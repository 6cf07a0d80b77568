# MaskSAM on AMOS22 CT, fold 0, with SAM ViT-B (the paper's stated backbone; the official code
# uses ViT-H, masksam_vit-h_amos_fold0.py): otherwise the official AMOS geometry, losses and
# schedule (_base_/models/masksam_amos.py: 512 x 512, T=9, Q=24, 15 organs + background;
# AdamW, 1000 epochs x 250 iterations).
# Needs checkpoints/sam_vit_b_01ec64.pth (official SAM ViT-B, linked in the segment-anything
# README's "Model Checkpoints") and data/amos (see configs/_base_/datasets/amos_3d.py).
_base_ = [
    '../_base_/models/masksam_vit-b.py',
    '../_base_/models/masksam_amos.py',
    '../_base_/datasets/amos_3d.py',
    '../_base_/schedules/masksam_adamw.py',
    '../_base_/masksam_runtime.py',
]
model = _base_.masksam_amos

# MaskSAM on Synapse with SAM ViT-B (the paper's stated backbone; the official code uses ViT-H,
# masksam_vit-h_synapse.py): otherwise the official Synapse geometry and schedule (256 x 256,
# T=26, Q=24, 8 organs + background, MaskRefine3D, SGD, 1000 epochs x 250 iterations).
# 18,843,937 trainable of 109,581,137 parameters (counted on the modules; the paper's "14M tunable" is
# reproduced by no released geometry).
# Needs checkpoints/sam_vit_b_01ec64.pth (official SAM ViT-B, linked in the segment-anything
# README's "Model Checkpoints") and data/synapse_3d (the converter command is in
# configs/_base_/datasets/synapse_3d.py). On a GPU train with --amp.
_base_ = [
    '../_base_/models/masksam_vit-b.py',
    '../_base_/datasets/synapse_3d.py',
    '../_base_/schedules/masksam_sgd.py',
    '../_base_/masksam_runtime.py',
]

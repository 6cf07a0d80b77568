# MaskSAM (seed 003, Table 2: 87.23 mean Dice, nnU-Net protocol) on Synapse with the official
# code's geometry: SAM ViT-H at 256 x 256, patches of T=26 slices, Q=24 queries, 8 organs +
# background, MaskRefine3D; SGD lr 1e-3 (Nesterov, momentum 0.99), poly per epoch, 1000 epochs
# x 250 iterations at a global batch of 2. 65,550,113 trainable of 701,664,081 parameters
# (counted on the modules; the official 1024-size tables make it 706.6M).
# Needs checkpoints/sam_vit_h_4b8939.pth (official SAM ViT-H, linked in the segment-anything
# README's "Model Checkpoints") and data/synapse_3d (the converter command is in
# configs/_base_/datasets/synapse_3d.py). On a GPU train with --amp (fp16, as the official code).
_base_ = [
    '../_base_/models/masksam_vit-h.py',
    '../_base_/datasets/synapse_3d.py',
    '../_base_/schedules/masksam_sgd.py',
    '../_base_/masksam_runtime.py',
]

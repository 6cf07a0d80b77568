# MaskSAM (seed 003, Table 1: 90.52 mean Dice = the mean of the 5 folds' validation Dice, no
# ensemble) on AMOS22 CT, cross-validation fold 0 (folds 1-4: masksam_vit-h_amos_fold{1..4}.py),
# with the official code's geometry: SAM ViT-H at 512 x 512, patches of T=9 slices, Q=24
# queries, 15 organs + background, MaskRefine3D; final-mask loss and matching weights 1.2
# (not 1.5), 131,072 loss points (half the patch's pixels) (_base_/models/masksam_amos.py);
# AdamW lr 1e-3 (eps 1e-4), poly per epoch, 1000 epochs x 250 iterations at a global batch of
# 2. 66,151,597 trainable of 703,269,085 parameters.
# Needs checkpoints/sam_vit_h_4b8939.pth (official SAM ViT-H, linked in the segment-anything
# README's "Model Checkpoints") and data/amos (the converter command is in
# configs/_base_/datasets/amos_3d.py). On a GPU train with --amp.
_base_ = [
    '../_base_/models/masksam_vit-h.py',
    '../_base_/models/masksam_amos.py',
    '../_base_/datasets/amos_3d.py',
    '../_base_/schedules/masksam_adamw.py',
    '../_base_/masksam_runtime.py',
]
model = _base_.masksam_amos

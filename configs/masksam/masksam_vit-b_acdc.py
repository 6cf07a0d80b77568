# MaskSAM (seed 003, Table 3: 93.39 mean Dice; Table 4 row B9, the full model) on ACDC with the
# official code's geometry: 4 x 256 x 256 MR patches, a 3D stem (16, 32 channels) that
# upsamples x4 to SAM ViT-B's 1024 x 1024 input (g = 64), Q=8 queries, 3 structures +
# background; the prompt generator stops at 256 x 256 (scales 1, 2, 4, 4, 4, the last three
# levels sharing one x4 skip) and there is no 3D refinement (the official ACDC code has none:
# SAM's 4g = 256 masks are used as they are). SGD lr 1e-3, poly per epoch, 500 epochs x 250
# iterations at a global batch of 2. 20,807,850 trainable of 114,543,322 parameters (spec
# section 8 estimates ~21.4M assuming 3x3x3 kernels at every generator level; here the finest
# level has (1, 3, 3), the rule that fits the official ViT-H count).
# Needs checkpoints/sam_vit_b_01ec64.pth (official SAM ViT-B, linked in the segment-anything
# README's "Model Checkpoints") and data/acdc (the converter command is in
# configs/_base_/datasets/acdc_3d.py). Test on the 40 test volumes with tools/test.py; on a GPU
# train with --amp.
_base_ = [
    '../_base_/models/masksam_vit-b.py',
    '../_base_/datasets/acdc_3d.py',
    '../_base_/schedules/masksam_sgd.py',
    '../_base_/masksam_runtime.py',
]
num_frames = 4  # = the patch depth of acdc_3d.py
num_queries = 8
model = dict(
    stem=dict(channels=(16, 32), upsample=4),
    backbone=dict(img_size=1024, num_frames=num_frames),
    neck=dict(num_frames=num_frames, num_queries=num_queries, channels=(256, 128, 128, 128, 128),
              scales=(1, 2, 4, 4, 4), share_skips=True),
    decode_head=dict(num_classes=4, num_frames=num_frames, num_queries=num_queries,
                     prompt_encoder=dict(img_size=1024), refine=None),
)
max_epochs = 500
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

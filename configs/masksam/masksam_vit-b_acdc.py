# MaskSAM (seed 003, Table 3: 93.39 mean Dice; Table 4 row B9, the full model) on ACDC with the
# official code's network (SAMAdapter_2024_ACDC_Patch1024_TQReshape): 4 x 256 x 256 MR patches;
# the official 3D stem upsamples x4 to SAM ViT-B's 1024 x 1024 input (g = 64): conv 1 -> 16,
# ConvT 16 -> 16, ConvT 16 -> 32 (each + bare InstanceNorm + GELU), conv 32 -> 32 at 1024^2,
# conv 32 -> 3 (33,945 parameters); Q=8 queries, 3 structures + background; the prompt generator
# stops at 256 x 256 (scales 1, 2, 4, 4, 4): the last three levels share one x4 skip module and
# one kernel size (3x3x3, assumed, as the parameter counts; the ACDC plan is not shipped: (1, 3, 3)
# would give 19,046,938 trainable); no 3D refinement: SAM's 4g = 256 masks pass SAM's
# postprocess_masks (bilinear 256 -> 1024 -> 256); boxes floored at 256 and scaled x4
# (ResizeLongestSide(1024).apply_boxes). SGD lr 1e-3, poly per epoch, 500 epochs x 250
# iterations at a global batch of 2.
# 21,406,234 trainable of 115,141,706 parameters (counted on the modules: ~21.4M).
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
    # mmsam's earlier reading (25,385 parameters): dict(channels=(16, 32), upsample=4)
    stem=dict(channels=(16,), upsample=4, up_channels=(16, 32), post_channels=(32,),
              up_norm_affine=False),
    backbone=dict(img_size=1024, num_frames=num_frames),
    neck=dict(num_frames=num_frames, num_queries=num_queries, channels=(256, 128, 128, 128, 128),
              scales=(1, 2, 4, 4, 4), share_skips=True, kernel_sizes=((3, 3, 3),) * 5),
    # no 3D refinement; SAM's postprocess_masks (256 -> 1024 -> 256 bilinear) as the official
    # ACDC code ('direct': one resize, here none)
    decode_head=dict(num_classes=4, num_frames=num_frames, num_queries=num_queries,
                     prompt_encoder=dict(img_size=1024), refine=None, mask_postprocess='sam'),
)
max_epochs = 500
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)

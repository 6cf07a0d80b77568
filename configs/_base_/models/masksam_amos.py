# MaskSAM's AMOS22 settings, for either SAM encoder (masksam_vit-b.py or masksam_vit-h.py), as
# the official code: 512 x 512 slices, patches of T = 9 slices (amos_3d.py's patch depth), the
# model base's Q = 24 queries, 15 organs + background; final-mask BCE and Dice weighted 1.2
# (not 1.5) in the losses and so in the matching costs; 131,072 loss points (half the patch's
# pixels). A config merges it into the model it inherits: `model = _base_.masksam_amos`.
num_frames = 9
mask_weight = 1.2
masksam_amos = dict(
    backbone=dict(img_size=512, num_frames=num_frames),
    neck=dict(num_frames=num_frames, input_size=512),
    decode_head=dict(
        num_classes=16,
        num_frames=num_frames,
        prompt_encoder=dict(img_size=512),
        loss_decode=dict(num_points=131072, loss_weights=dict(mask=mask_weight,
                                                              dice=mask_weight)),
    ),
)

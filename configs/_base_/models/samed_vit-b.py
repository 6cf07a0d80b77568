# SAMed: SAM ViT-B with LoRA (rank 4 on q and v), prompt-free mask decoder, 512 x 512 input.
img_size = 512
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
# Input as the official SAMed / H-SAM code: the [0, 1] slice (LoadNpzSlice's 0-255 divided
# by 255), i.e. their pixel_mean 0 / pixel_std 1 on [0, 1] images, not SAM's statistics. For
# SAM-normalised input use mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]
# (e.g. configs/hsam/hsam_vit-b_synapse_10pct_sam-norm.py).
data_preprocessor = dict(
    type='SAMDataPreProcessor',
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=(img_size, img_size),
)
model = dict(
    type='SAMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='SAMImageEncoder',
        arch='vit_b',
        img_size=img_size,
        frozen=True,
        adapter=dict(type='LoRA', rank=4, targets=('q', 'v')),
        checkpoint=sam_checkpoint,
    ),
    decode_head=dict(
        type='SAMedHead',
        num_classes=9,
        # as the official loaders: SAM's mask tokens, hypernetworks and IoU head are not
        # loaded (re-initialised) since the class tokens replace SAM's ambiguity tokens
        reinit_class_tokens=True,
        prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=256, img_size=img_size,
                            patch_size=16, checkpoint=sam_checkpoint),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=256, checkpoint=sam_checkpoint),
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.2, loss_name='loss_ce'),
            dict(type='MultiClassDiceLoss', loss_weight=0.8, loss_name='loss_dice'),
        ],
    ),
    test_cfg=dict(mode='whole'),
)

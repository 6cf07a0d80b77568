# H-SAM: SAM ViT-B with LoRA (rank 4 on q and v) and a two-stage hierarchical decoder, 512 x 512.
img_size = 512
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # SAM's pixel statistics
    std=[58.395, 57.12, 57.375],
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
        type='HSAMHead',
        num_classes=9,
        prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=256, img_size=img_size,
                            patch_size=16, checkpoint=sam_checkpoint),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=256, checkpoint=sam_checkpoint),
        # Table 4's switches: each ablation row is a config that turns some of them off.
        mask_guided_self_attention=True,
        class_balance=True,
        mask_cross_attention='learnable',
        hierarchical_pixel_decoder=True,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.1, loss_name='loss_ce'),
            dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice'),
        ],
    ),
    test_cfg=dict(mode='whole'),
)
# lambda_w, the stage-1 loss weight: H-SAM supplementary Table 8 (0.4, decaying to ~0 in 300
# epochs as 1 - 0.6 ** (0.99 ** epoch)).
custom_hooks = [dict(type='StageLossWeightHook', start=0.4, decay=0.01)]

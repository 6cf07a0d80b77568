# H-SAM: SAMed's encoder (SAM ViT-B + LoRA rank 4 on q and v, 512 x 512) with a two-stage
# hierarchical decoder.
_base_ = ['./samed_vit-b.py']
model = dict(
    decode_head=dict(
        type='HSAMHead',
        # Table 4's switches: each ablation row is a config that turns some of them off.
        mask_guided_self_attention=True,
        class_balance=True,
        mask_cross_attention='learnable',
        hierarchical_pixel_decoder=True,
        # CMAttn among the C class maps (width h * w = 1024 at 512 input), as the official
        # build; 'spatial' attends among positions instead. Bounded tanh weighting.
        cmattn_mode='class_tokens',
        cmattn_weighting='tanh',
        attention_heads=8,
        # official: N(0, 1) * 0.2 * (max - min) added to stage 2's input embedding in training
        embedding_noise=0.2,
        # paper: "the average of probabilities from the two outputs"
        stage_fusion='probs',
        # official: stage 2 starts random (only stage 1 loads SAM's decoder)
        stage2_init='random',
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.1, loss_name='loss_ce'),
            dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice'),
        ],
    ))
# lambda_w, the stage-1 loss weight: H-SAM supplementary Table 8 and the official trainer
# (0.4, decaying to ~0 in 300 epochs as 1 - 0.6 ** (0.99 ** epoch)).
custom_hooks = [dict(type='StageLossWeightHook', start=0.4, decay=0.01)]

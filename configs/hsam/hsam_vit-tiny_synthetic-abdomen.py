# H-SAM's decoder on the tiny SAM-architecture ViT of the SAMed demo, with the same data,
# schedule, iterations and seed as configs/samed/samed_vit-tiny_synthetic-abdomen.py (CPU).
_base_ = ['../samed/samed_vit-tiny_synthetic-abdomen.py']
model = dict(
    decode_head=dict(
        type='HSAMHead',
        mask_guided_self_attention=True,
        class_balance=True,
        mask_cross_attention='learnable',
        hierarchical_pixel_decoder=True,
        attention_heads=4,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.1, loss_name='loss_ce'),
            dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice'),
        ],
    ))
# lambda_w from 0.4 towards 0 within the 16 epochs (the supplementary's curve, compressed).
custom_hooks = [dict(type='StageLossWeightHook', start=0.4, decay=0.17)]

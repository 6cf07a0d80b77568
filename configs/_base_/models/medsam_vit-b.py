# MedSAM (Ma et al.): box-prompted SAM ViT-B with MedSAM's weights, single mask output, Dice + BCE.
_base_ = ['./box_prompt_medsam_vit-b.py']
model = dict(
    decode_head=dict(
        type='MedSAMHead',
        loss_decode=[dict(type='MaskDiceLoss', loss_weight=1.0),
                     dict(type='MaskBCELoss', loss_weight=1.0)],
    ),
)

# Ablation B5 of MaskSAM Table 4 (ACDC, 91.61 mean Dice): SAM + MaskAvgBBoxPG + vAdapter +
# DPosEmbed: the full model (B9 = ../masksam_vit-b_acdc.py) with the vanilla bottleneck
# adapter (no depth mixing) everywhere: in every encoder block and at every decoder site.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['../masksam_vit-b_acdc.py']
model = dict(
    backbone=dict(adapter=dict(adapter=dict(_delete_=True, type='BottleneckAdapter'))),
    decode_head=dict(decoder_adapter=dict(
        token_adapter=dict(_delete_=True, type='BottleneckAdapter'),
        image_adapter=dict(_delete_=True, type='BottleneckAdapter'))),
)

# Ablation B6 of MaskSAM Table 4 (ACDC, 92.88 mean Dice): SAM + MaskAvgBBoxPG +
# vAdapter w/ D-MLP after FC-Up + DPosEmbed: B8 (masksam_vit-b_acdc_b8.py) with the depth MLP
# of every adapter (encoder blocks, decoder tokens and image path) after the up-projection
# (fc2) instead of in the middle of the bottleneck.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b8.py']
position = 'after_up'
model = dict(
    backbone=dict(adapter=dict(adapter=dict(position=position))),
    decode_head=dict(decoder_adapter=dict(token_adapter=dict(position=position),
                                          image_adapter=dict(position=position))),
)

# Ablation B8 of MaskSAM Table 4 (ACDC, 93.10 mean Dice): SAM + MaskAvgBBoxPG + DMLPAdapter +
# DPosEmbed, i.e. the full model (B9 = ../masksam_vit-b_acdc.py, 93.39) with the DMLP adapter
# (depth MLP in the middle of the bottleneck) also on the image embeddings: in every encoder
# block and at the decoder's image->token attention, where B9 has DConv adapters.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['../masksam_vit-b_acdc.py']
model = dict(
    backbone=dict(adapter=dict(adapter=dict(_delete_=True, type='DMLPAdapter'))),
    decode_head=dict(decoder_adapter=dict(image_adapter=dict(_delete_=True, type='DMLPAdapter'))),
)

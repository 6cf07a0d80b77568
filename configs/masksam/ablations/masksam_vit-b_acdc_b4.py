# Ablation B4 of MaskSAM Table 4 (ACDC, 91.45 mean Dice): SAM + MaskAvgBBoxPG + vAdapter, i.e.
# B5 (masksam_vit-b_acdc_b5.py) without the depth positional embeddings (DPosEmbed).
# Both depth embeddings are removed: the encoder's (backbone.depth_embed=False) and the
# decoder's depth PE (depth_pos_embed=False).
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b5.py']
model = dict(backbone=dict(depth_embed=False), decode_head=dict(depth_pos_embed=False))

# H-SAM ablation (10% Synapse): Table 4 row 2, learnable mask-attention only (paper 77.68)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=False, class_balance=False,
                              mask_cross_attention='learnable', hierarchical_pixel_decoder=False))

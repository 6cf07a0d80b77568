# H-SAM ablation (10% Synapse): Table 4 row 7, mask-attention + CMAttn (paper 78.76)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=True, class_balance=True,
                              mask_cross_attention='learnable', hierarchical_pixel_decoder=False))

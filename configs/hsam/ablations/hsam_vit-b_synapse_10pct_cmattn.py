# H-SAM ablation (10% Synapse): Table 4 row 6, CMAttn only (paper 77.71)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=True, class_balance=True,
                              mask_cross_attention=None, hierarchical_pixel_decoder=False))

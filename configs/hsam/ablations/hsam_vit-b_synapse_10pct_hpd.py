# H-SAM ablation (10% Synapse): Table 4 row 4, hierarchical pixel decoder only (paper 77.05)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=False, class_balance=False,
                              mask_cross_attention=None, hierarchical_pixel_decoder=True))

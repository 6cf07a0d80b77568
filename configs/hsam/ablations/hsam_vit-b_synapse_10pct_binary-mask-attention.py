# H-SAM ablation (10% Synapse): Table 5, original (binarised, Mask2Former) mask-attention only
# (paper 75.61)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=False, class_balance=False,
                              mask_cross_attention='binary', hierarchical_pixel_decoder=False))

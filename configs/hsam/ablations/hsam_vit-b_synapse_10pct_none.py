# H-SAM ablation (10% Synapse): all switches off: two plain SAM decoders in sequence (Table 4's
# all-off row, 75.57, is SAMed itself: configs/samed/samed_vit-b_synapse_10pct.py)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=False, class_balance=False,
                              mask_cross_attention=None, hierarchical_pixel_decoder=False))

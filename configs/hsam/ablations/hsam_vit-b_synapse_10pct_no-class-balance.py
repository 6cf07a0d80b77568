# H-SAM ablation (10% Synapse): all modules, CMAttn without the class-balanced noise (not in the
# paper's tables)
_base_ = ['../hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(mask_guided_self_attention=True, class_balance=False,
                              mask_cross_attention='learnable', hierarchical_pixel_decoder=True))

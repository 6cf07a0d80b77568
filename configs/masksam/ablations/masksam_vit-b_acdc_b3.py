# Ablation B3 of MaskSAM Table 4 (ACDC, 90.08 mean Dice): SAM + MaskBBoxPG + vAdapter: B4
# (masksam_vit-b_acdc_b4.py) prompting with the thresholded auxiliary mask and the learned box
# as it is (not averaged with the mask's box).
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b4.py']
model = dict(decode_head=dict(prompt_mode='mask_box'))

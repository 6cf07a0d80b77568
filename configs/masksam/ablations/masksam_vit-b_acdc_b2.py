# Ablation B2 of MaskSAM Table 4 (ACDC, 88.78 mean Dice): SAM + BBoxPG + vAdapter: B4
# (masksam_vit-b_acdc_b4.py) prompting with the learned box only. No mask prompt, so the
# auxiliary mask losses and matching costs are off (weight 0); the generator's mask head then
# receives no gradient.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b4.py']
model = dict(decode_head=dict(
    prompt_mode='box',
    loss_decode=dict(
        # the matching costs follow the losses: the aux-mask ones are off too
        loss_weights=dict(aux_mask=0.0, aux_dice=0.0)),
))

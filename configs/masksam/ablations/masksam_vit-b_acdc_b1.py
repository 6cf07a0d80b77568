# Ablation B1 of MaskSAM Table 4 (ACDC, 89.53 mean Dice): SAM + MaskPG + vAdapter: B4
# (masksam_vit-b_acdc_b4.py) prompting with the thresholded auxiliary mask and the box computed
# from it. No learned box, so the auxiliary box losses and matching costs are off (weight 0);
# the generator's box head then receives no gradient.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b4.py']
model = dict(decode_head=dict(
    prompt_mode='mask',
    loss_decode=dict(
        # the matching costs follow the losses: the box ones are off too
        loss_weights=dict(aux_bbox=0.0, aux_giou=0.0)),
))

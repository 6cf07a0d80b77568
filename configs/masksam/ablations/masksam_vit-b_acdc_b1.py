# Ablation B1 of MaskSAM Table 4 (ACDC, 89.53 mean Dice): SAM + MaskPG + vAdapter: B4
# (masksam_vit-b_acdc_b4.py) prompting with the thresholded auxiliary mask and the box computed
# from it. No learned box, so the auxiliary box losses and matching costs are off (weight 0);
# the generator's box head then receives no gradient.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b4.py']
ce_cost = dict(type='CrossEntropyLossCost', use_sigmoid=True)
dice_cost = dict(type='DiceCost', pred_act=True, eps=1.0, naive_dice=True)
model = dict(decode_head=dict(
    prompt_mode='mask',
    loss_decode=dict(
        loss_weights=dict(aux_bbox=0.0, aux_giou=0.0),
        # the criterion's default costs (spec section 3) with the box ones at 0
        assigner=dict(type='HungarianAssigner', match_costs=[
            dict(type='ClassificationCost', weight=0.2),
            dict(ce_cost, weight=1.5),
            dict(dice_cost, weight=1.5),
            dict(type='KeyedCost', cost=dict(ce_cost, weight=0.5), pred_key='aux_masks'),
            dict(type='KeyedCost', cost=dict(dice_cost, weight=0.5), pred_key='aux_masks'),
            dict(type='BoxL1Cost', weight=0.0),
            dict(type='GIoUCost', weight=0.0),
        ])),
))

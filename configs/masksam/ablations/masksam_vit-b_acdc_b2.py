# Ablation B2 of MaskSAM Table 4 (ACDC, 88.78 mean Dice): SAM + BBoxPG + vAdapter: B4
# (masksam_vit-b_acdc_b4.py) prompting with the learned box only. No mask prompt, so the
# auxiliary mask losses and matching costs are off (weight 0); the generator's mask head then
# receives no gradient.
# Needs what ../masksam_vit-b_acdc.py needs.
_base_ = ['./masksam_vit-b_acdc_b4.py']
ce_cost = dict(type='CrossEntropyLossCost', use_sigmoid=True)
dice_cost = dict(type='DiceCost', pred_act=True, eps=1.0, naive_dice=True)
model = dict(decode_head=dict(
    prompt_mode='box',
    loss_decode=dict(
        loss_weights=dict(aux_mask=0.0, aux_dice=0.0),
        # the criterion's default costs (spec section 3) with the aux-mask ones at 0
        assigner=dict(type='HungarianAssigner', match_costs=[
            dict(type='ClassificationCost', weight=0.2),
            dict(ce_cost, weight=1.5),
            dict(dice_cost, weight=1.5),
            dict(type='KeyedCost', cost=dict(ce_cost, weight=0.0), pred_key='aux_masks'),
            dict(type='KeyedCost', cost=dict(dice_cost, weight=0.0), pred_key='aux_masks'),
            dict(type='BoxL1Cost', weight=0.5),
            dict(type='GIoUCost', weight=0.2),
        ])),
))

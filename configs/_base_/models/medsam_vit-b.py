# MedSAM as SeqSAM's Table 1 baseline (Ma et al.'s weights): box-prompted SAM ViT-B, single mask
# output, trained as the official SeqSAM code trains it: Dice alone (MedSAM's paper adds BCE:
# add dict(type='MaskBCELoss') to loss_decode), against one random non-empty reader drawn
# independently of the box's reader (train_target='prompted': the box's own reader), and SAM's
# input normalisation, which the official code's processor applies to every model
# (MedSAM itself expects [0, 1]: box_prompt_medsam_vit-b.py's normalisation).
_base_ = ['./box_prompt_medsam_vit-b.py']
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        type='MedSAMHead',
        train_target='random_reader',
        loss_decode=[dict(type='MaskDiceLoss', loss_weight=1.0)],
    ),
)

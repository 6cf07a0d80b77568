# SAM multiple choice learning (SeqSAM's baseline): SAM's 3 mask outputs, winner-takes-all
# Dice against the annotations.
_base_ = ['./box_prompt_sam_vit-b.py']
model = dict(
    decode_head=dict(
        type='SAMMCLHead',
        mask_decoder=dict(num_multimask_outputs=3),
        loss_decode=dict(type='MultipleChoiceDiceLoss', loss_weight=1.0),
    ),
)

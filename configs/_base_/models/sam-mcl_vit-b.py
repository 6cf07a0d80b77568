# SAM multiple choice learning (SeqSAM's baseline): SAM's 3 mask outputs, winner-takes-all
# Dice against one random non-empty reader per step, drawn independently of the box's reader,
# as the official SeqSAM code ('all_annotations': every reader trains its best mask).
_base_ = ['./box_prompt_sam_vit-b.py']
model = dict(
    decode_head=dict(
        type='SAMMCLHead',
        mask_decoder=dict(num_multimask_outputs=3),
        train_target='random_reader',
        loss_decode=dict(type='MultipleChoiceDiceLoss', loss_weight=1.0),
    ),
)

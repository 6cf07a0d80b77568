# MedSAM's own recipe (box prompt, one mask, Dice + BCE against the box's reader, [0, 1] input)
# with a tiny SAM-architecture ViT trained from scratch on the synthetic lesions (CPU, minutes).
# It stands in for MedSAM's pretraining: the other synthetic-lesion configs load it as their
# frozen encoder and initial decoder, so it keeps MedSAM's recipe rather than SeqSAM's baseline
# one (Dice only, a random reader: medsam_vit-b.py). No SAM/MedSAM weights are needed.
_base_ = [
    '../_base_/models/medsam_vit-b.py',
    '../_base_/models/sam_vit-tiny_128.py',
    '../_base_/datasets/synthetic_lesions.py',
    '../_base_/schedules/synthetic_lesion_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = _base_.sam_vit_tiny_128
model.data_preprocessor.update(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])
model.decode_head.update(train_target='prompted',
                         loss_decode=[dict(type='MaskDiceLoss', loss_weight=1.0),
                                      dict(type='MaskBCELoss', loss_weight=1.0)])
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=5, save_best='GED', rule='less'))

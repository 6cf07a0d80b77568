# MedSAM's model (box prompt, one mask, Dice + BCE) with a tiny SAM-architecture ViT trained
# from scratch on the synthetic lesions (CPU, minutes). No SAM/MedSAM weights are needed.
_base_ = [
    '../_base_/models/medsam_vit-b.py',
    '../_base_/models/sam_vit-tiny_128.py',
    '../_base_/datasets/synthetic_lesions.py',
    '../_base_/schedules/synthetic_lesion_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = {{_base_.sam_vit_tiny_128}}
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=5, save_best='GED', rule='less'))

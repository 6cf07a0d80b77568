# SAM MCL (3 outputs, pure winner-takes-all Dice) on the synthetic lesions (CPU, minutes). As
# SeqSAM fine-tunes SAM/MedSAM weights, the tiny MedSAM trained on these data is the frozen
# encoder and the initial decoder (make checkpoints/tiny-medsam_synthetic-lesion.pth first, see
# configs/medsam/README.md). Same data, budget and seed as the other synthetic-lesion configs.
_base_ = [
    '../_base_/models/sam-mcl_vit-b.py',
    '../_base_/models/sam_vit-tiny_128.py',
    '../_base_/datasets/synthetic_lesions.py',
    '../_base_/schedules/synthetic_lesion_finetune_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = _base_.sam_vit_tiny_128_pretrained
# mmsam's whole-mask Dice with smoothing 1 (the README's numbers), not the official per-row
# MONAI Dice of the Table 1 configs.
model.decode_head.update(loss_decode=dict(type='MultipleChoiceDiceLoss', eps=1.0,
                                          squared_pred=False, per_row=False, loss_weight=1.0))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=5, save_best='GED', rule='less'))

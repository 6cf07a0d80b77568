# SeqSAM M=3 on the synthetic lesions (CPU, minutes), as the paper
# fine-tunes on SAM/MedSAM weights: the tiny MedSAM trained on these data is the frozen encoder
# and the initial decoder (make checkpoints/tiny-medsam_synthetic-lesion.pth first, see
# configs/medsam/README.md). Same data, budget and seed as the other synthetic-lesion configs.
_base_ = [
    '../_base_/models/seqsam_vit-b.py',
    '../_base_/models/sam_vit-tiny_128.py',
    '../_base_/datasets/synthetic_lesions.py',
    '../_base_/schedules/synthetic_lesion_finetune_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = _base_.sam_vit_tiny_128_pretrained
# mmsam's readings of the head and loss (the table in README.md was measured with them), not
# the official quirks of the Table 1 configs: cat([H, Z]), plain whole-mask Dice with smoothing 1,
# empty readers zeroed by the matched reader, the mean over the batch.
model.decode_head.update(
    recurrent_input_order='hz',
    loss_decode=dict(type='HungarianDiceLoss', eps=1.0, squared_pred=False, per_row=False,
                     ignore_empty=True, empty_weighting='reader', normalizer='pairs',
                     batch_reduction='mean', loss_weight=1.0))
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=5, save_best='GED', rule='less'))

# MedSAM (box prompt, one mask, Dice against one random non-empty reader)
# on LIDC-IDRI, SeqSAM's Table 1 baseline with the official protocol: ViT-B at 1024, frozen
# encoder (embeddings cached), the official split (lidc.py --split official), one epoch of AdamW
# lr 1e-4 decayed linearly to 0, batch 2, the final model tested. mmsam's recommended protocol:
# medsam_vit-b_lidc_by-series-20e.py.
_base_ = [
    '../_base_/models/medsam_vit-b.py',
    '../_base_/datasets/lidc_seqsam-split.py',
    '../_base_/schedules/seqsam_official_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
default_hooks = dict(checkpoint=dict(save_best=None))

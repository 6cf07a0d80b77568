# SeqSAM M=3 on SAM ViT-B weights, LIDC-IDRI (SeqSAM Table 1A), the official protocol:
# frozen encoder (its embeddings are cached on disk after the first epoch), the official code's
# split (data converted with lidc.py --split official) and run (one epoch, AdamW lr 1e-4 decayed
# linearly to 0, batch 2), the final model tested. mmsam's recommended protocol (by-series
# split, 20 epochs, best validation GED): seqsam_vit-b_lidc_m3_by-series-20e.py.
_base_ = [
    '../_base_/models/seqsam_vit-b.py',
    '../_base_/datasets/lidc_seqsam-split.py',
    '../_base_/schedules/seqsam_official_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(num_hypotheses=3))
default_hooks = dict(checkpoint=dict(save_best=None))

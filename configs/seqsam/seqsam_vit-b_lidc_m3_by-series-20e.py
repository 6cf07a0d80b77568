# SeqSAM M=3 on SAM ViT-B, LIDC-IDRI with mmsam's recommended protocol instead of the official
# one (seqsam_vit-b_lidc_m3.py): the by-series split (no series in two splits; data/lidc from
# lidc.py's default), 20 epochs at a constant lr 1e-4, the checkpoint of the best validation GED.
_base_ = [
    '../_base_/models/seqsam_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/ambiguous_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(num_hypotheses=3))
default_hooks = dict(checkpoint=dict(save_best='GED', rule='less'))

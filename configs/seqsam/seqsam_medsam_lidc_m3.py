# SeqSAM M=3 on MedSAM ViT-B weights, LIDC-IDRI (SeqSAM Table 1A): frozen encoder (its
# embeddings are cached on disk after the first epoch), AdamW lr 1e-4, weight decay 0.01, batch 2.
_base_ = [
    '../_base_/models/seqsam_medsam_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/ambiguous_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(num_hypotheses=3))
default_hooks = dict(checkpoint=dict(save_best='GED', rule='less'))

# SAM MCL on LIDC-IDRI (SeqSAM's Table 1 setting): ViT-B at 1024, frozen encoder (its
# embeddings are cached on disk after the first epoch), AdamW lr 1e-4, batch 2.
_base_ = [
    '../_base_/models/sam-mcl_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/ambiguous_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
default_hooks = dict(checkpoint=dict(save_best='GED', rule='less'))

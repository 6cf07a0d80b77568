# sam-mcl_vit-b_lidc.py with mmsam's recommended protocol instead of the official one: the by-series
# split (data/lidc from lidc.py's default), 20 epochs at a constant lr 1e-4, the checkpoint of
# the best validation GED.
_base_ = [
    '../_base_/models/sam-mcl_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/ambiguous_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
default_hooks = dict(checkpoint=dict(save_best='GED', rule='less'))

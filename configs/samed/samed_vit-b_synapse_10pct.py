# SAMed on Synapse with the same 10% split, augmentation, batch and schedule as
# configs/hsam/hsam_synapse_10pct.py, for the side-by-side baseline (H-SAM Table 1: 75.57).
_base_ = [
    '../_base_/models/samed_vit-b.py',
    '../_base_/datasets/synapse.py',
    '../_base_/schedules/hsam_schedule.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=8, dataset=dict(split='train_10pct'))
auto_scale_lr = dict(enable=False, base_batch_size=32)

# H-SAM on LA (2018 Atrial Segmentation Challenge, UA-MT/BCP split) with 4 labelled scans,
# slices resized to 512 x 512 (paper Table 2: 89.22 Dice). Needs data/la written by
#   python tools/dataset_converters/la.py SRC data/la
_base_ = [
    '../_base_/models/hsam_vit-b.py',
    '../_base_/datasets/la.py',
    '../_base_/schedules/hsam_schedule.py',
    '../_base_/default_runtime.py',
]
model = dict(decode_head=dict(num_classes=2))
train_dataloader = dict(batch_size=8)
auto_scale_lr = dict(enable=False, base_batch_size=32)
# Final-epoch evaluation, no checkpoint selected on the test split (the val loop runs on it).
default_hooks = dict(checkpoint=dict(interval={{_base_.checkpoint_interval}}, save_best=None))

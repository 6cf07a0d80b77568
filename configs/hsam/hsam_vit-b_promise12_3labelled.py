# H-SAM on PROMISE12 (prostate MR, 40/10 split as MLB-Seg) with 3 labelled cases, 512 x 512
# (paper Table 3: 87.27 Dice). Needs data/promise12 written by
#   python tools/dataset_converters/promise12.py SRC data/promise12
_base_ = [
    '../_base_/models/hsam_vit-b.py',
    '../_base_/datasets/promise12.py',
    '../_base_/schedules/hsam_schedule.py',
    '../_base_/default_runtime.py',
]
model = dict(decode_head=dict(num_classes=2))
train_dataloader = dict(batch_size=8)
auto_scale_lr = dict(enable=False, base_batch_size=32)
# Final-epoch evaluation, no checkpoint selected on the test split (the val loop runs on it).
default_hooks = dict(checkpoint=dict(interval={{_base_.checkpoint_interval}}, save_best=None))

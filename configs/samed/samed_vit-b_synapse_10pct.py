# SAMed on Synapse with the same 10% split, augmentation, batch and schedule as
# configs/hsam/hsam_vit-b_synapse_10pct.py, for the side-by-side baseline (H-SAM Table 1: 75.57):
# the H-SAM paper retrains SAMed in its own protocol.
_base_ = [
    '../_base_/models/samed_vit-b.py',
    '../_base_/datasets/synapse.py',
    '../_base_/schedules/hsam_schedule.py',
    '../_base_/default_runtime.py',
]
# SAMed keeps its own loss (0.2 CE + 0.8 Dice).
train_dataloader = dict(batch_size=8, dataset=dict(split='train_10pct'))
auto_scale_lr = dict(enable=False, base_batch_size=32)
randomness = dict(seed=2345)
# Final-epoch evaluation, no checkpoint selected on the test split (the val loop runs on it).
default_hooks = dict(checkpoint=dict(interval={{_base_.checkpoint_interval}}, save_best=None))
# SAM's position table resized bilinearly, as SAMed's and H-SAM's official loaders both do.
# The loss's 1/4-resolution labels as the official dataset makes low_res_label: scipy
# zoom(order=0) of the full labels (mmsam's default F.interpolate nearest reads other pixels).
model = dict(backbone=dict(pos_embed_resize='bilinear'),
             decode_head=dict(loss_label_resize='zoom'))

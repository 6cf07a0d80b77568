# SAMed (Zhang & Liu, 2023) on Synapse: SAM ViT-B + LoRA r=4, 512 x 512, as the official
# train.py: batch 12 per GPU x 2 GPUs (24), lr 0.005, poly decay for 200 epochs stopped after
# epoch 160, SAMed's augmentation (rot90 + flip, else +-20 degree rotation), seed 1234.
# Needs checkpoints/sam_vit_b_01ec64.pth (official SAM ViT-B) and data/synapse (converted).
#   bash tools/dist_train.sh configs/samed/samed_vit-b_synapse.py 2
_base_ = [
    '../_base_/models/samed_vit-b.py',
    '../_base_/datasets/synapse.py',
    '../_base_/schedules/samed_schedule.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=12, dataset=dict(pipeline=[
    dict(type='LoadNpzSlice'), {{_base_.samed_augmentation}},
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}})]))
# 2 GPUs x 12; on another number of GPUs enable auto_scale_lr (linear scaling from 24).
auto_scale_lr = dict(enable=False, base_batch_size=24)
randomness = dict(seed=1234)
# Final-epoch evaluation, no checkpoint selected on the test split (the val loop runs on it).
default_hooks = dict(checkpoint=dict(interval={{_base_.checkpoint_interval}}, save_best=None))
# SAM's 64 x 64 position table resized to the 32 x 32 grid of a 512 input bilinearly, as the
# official build_sam.load_from does (mmsam's default is bicubic: 9e-2 on the logits). The
# official SAMed LoRA file converts with tools/model_converters/samed2mmsam.py.
# The loss's 1/4-resolution labels as the official dataset makes low_res_label: scipy
# zoom(order=0) of the full labels (mmsam's default F.interpolate nearest reads other pixels).
model = dict(backbone=dict(pos_embed_resize='bilinear'),
             decode_head=dict(loss_label_resize='zoom'))

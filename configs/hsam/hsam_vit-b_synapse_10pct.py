# H-SAM (Cheng et al., CVPR 2024) on Synapse with 10% of the training slices (few-shot),
# SAM ViT-B + LoRA r=5 at 512 x 512, 300 epochs. Paper: 80.35 mean Dice (Table 1).
# The official network (configs/_base_/models/hsam_vit-b.py); the released 220_epoch_299.pth
# converts with tools/model_converters/hsam2mmsam.py and is tested as the official test.py
# does with hsam_vit-b_synapse_10pct_224-round-trip.py (configs/hsam/README.md, Model zoo).
# Needs checkpoints/sam_vit_b_01ec64.pth and data/synapse written by
#   python tools/dataset_converters/synapse.py SRC data/synapse
_base_ = [
    '../_base_/models/hsam_vit-b.py',
    '../_base_/datasets/synapse.py',
    '../_base_/schedules/hsam_schedule.py',
    '../_base_/default_runtime.py',
]
# Table 7: batch 32 (4 GPUs x 8). On another number of GPUs keep 32 in total or enable
# auto_scale_lr (--cfg-options auto_scale_lr.enable=True). split 'train_10pct' is the official
# 221-slice list (lists_Synapse/train_220.txt), the converter's default.
train_dataloader = dict(batch_size=8, dataset=dict(split='train_10pct'))
randomness = dict(seed=2345)  # the official train.py's seed
auto_scale_lr = dict(enable=False, base_batch_size=32)
# Final-epoch evaluation, no checkpoint selected on the test split (the val loop runs on it).
default_hooks = dict(checkpoint=dict(interval={{_base_.checkpoint_interval}}, save_best=None))

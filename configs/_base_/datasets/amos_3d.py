# AMOS22 abdominal CT (the 200 labelled CT training cases, 15 organs + background) as whole
# volumes for 3D methods (MaskSAM), with nnU-Net's 5-fold cross-validation (fold `fold`;
# the paper's number is the mean of the 5 folds' validation Dice, no ensemble) and nnU-Net's
# training pipeline: CT normalisation, 9 x 512 x 512 patches (half of them centred on
# foreground), nnU-Net's augmentation in its order and probabilities, and whole-volume
# evaluation on the original grid with nnU-Net's Dice convention.
# Needs data/amos, written from the AMOS22 release (imagesTr/, labelsTr/, dataset.json) by
#   python tools/dataset_converters/amos.py SRC data/amos --target-spacing auto
# (raw HU and the CT foreground statistics NormalizeIntensity3D reads; --target-spacing auto
# resamples to nnU-Net's target spacing, as nnU-Net's preprocessing, and keeps each case's
# original label for evaluation.)
# A config for another fold sets `fold` AND the three splits below again: the f-strings are
# evaluated in this file, so changing only `fold` in a child changes nothing.
# The augmentation list is nnunet_3d_augmentation.py's, shared with the other *_3d.py bases.
_base_ = ['./nnunet_3d_augmentation.py']
fold = 0
dataset_type = 'AMOSVolumeDataset'
data_root = 'data/amos'
patch_size = (9, 512, 512)
train_pipeline = [
    dict(type='LoadVolume'),
    dict(type='NormalizeIntensity3D', mode='ct'),
    # foreground patches: the batch sampler's (nnU-Net's last 33% of each batch); the
    # enlarged window (nnU-Net's 256 -> 301) leaves room for rotation and scaling
    dict(type='RandomPatchCrop3D', patch_size=patch_size, rotation_margin=True),
    *_base_.nnunet_augmentation,  # nnunet_3d_augmentation.py
    dict(type='PackVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadVolume', native_label=True),  # evaluate on the original grid
    dict(type='NormalizeIntensity3D', mode='ct'),
    dict(type='PackVolumeInputs'),
]
# One nnU-Net epoch: 250 iterations at a global batch of 2 = 500 patches. On 2 GPUs set
# batch_size=1: the sampler splits the 500 patches between them.
train_dataloader = dict(
    batch_size=2,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=_base_.nnunet_batch_sampler,  # nnunet_3d_augmentation.py
    dataset=dict(type=dataset_type, data_root=data_root, split=f'fold{fold}_train',
                 volume_dir='train_volumes', samples_per_epoch=500, pipeline=train_pipeline),
)
# Every labelled case lives in train_volumes/; a fold's validation cases are its test set.
val_dataloader = dict(
    batch_size=1,  # whole cases, sliding window
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split=f'fold{fold}_val',
                 volume_dir='train_volumes', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
# nnU-Net's Dice (NaN when a class is absent from both, nanmean over cases; no HD95, as the
# paper's MaskSAM rows), with TransUNet's convention logged beside it.
val_evaluator = dict(type='VolumeDiceHD95Metric', convention='nnunet', hd95=False,
                     also_log_convention='transunet')
test_evaluator = val_evaluator

# ACDC cardiac cine MRI (100 patients, ED and ES frames; the official MaskSAM split: 70
# training, 10 validation, 20 test patients = 140 / 20 / 40 volumes; RV, MYO, LV + background)
# as whole volumes for 3D methods (MaskSAM), with nnU-Net's training pipeline: per-volume
# z-score, 4 x 256 x 256 patches (half of them centred on foreground), nnU-Net's augmentation
# in its order and probabilities, and whole-volume evaluation on the original grid with
# nnU-Net's Dice convention. Validation (end of training) on the 20 validation volumes; the
# paper's table is the test split (40 volumes, each frame a case): tools/test.py.
# Needs data/acdc, written from the ACDC release (training/patientXXX/...) by
#   python tools/dataset_converters/acdc.py SRC data/acdc --target-spacing auto
# (--target-spacing auto resamples to nnU-Net's target spacing, as nnU-Net's preprocessing,
# and keeps each validation / test frame's original label for evaluation.)
# The augmentation list is nnunet_3d_augmentation.py's, shared with the other *_3d.py bases.
_base_ = ['./nnunet_3d_augmentation.py']
dataset_type = 'ACDCVolumeDataset'
data_root = 'data/acdc'
patch_size = (4, 256, 256)
train_pipeline = [
    dict(type='LoadVolume'),
    dict(type='NormalizeIntensity3D', mode='zscore'),  # MR: nnU-Net's per-volume z-score
    # foreground patches: the batch sampler's (nnU-Net's last 33% of each batch); the
    # enlarged window (nnU-Net's 256 -> 301) leaves room for rotation and scaling
    dict(type='RandomPatchCrop3D', patch_size=patch_size, rotation_margin=True),
    *_base_.nnunet_augmentation,  # nnunet_3d_augmentation.py
    dict(type='PackVolumeInputs'),
]
test_pipeline = [
    dict(type='LoadVolume', native_label=True),  # evaluate on the original grid
    dict(type='NormalizeIntensity3D', mode='zscore'),
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
    dataset=dict(type=dataset_type, data_root=data_root, split='train_volumes',
                 volume_dir='train_volumes', samples_per_epoch=500, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,  # whole cases, sliding window
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', volume_dir='test_volumes',
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', volume_dir='test_volumes',
                 test_mode=True, pipeline=test_pipeline),
)
# nnU-Net's Dice (NaN when a class is absent from both, nanmean over cases; no HD95, as the
# paper's MaskSAM rows), with TransUNet's convention logged beside it.
val_evaluator = dict(type='VolumeDiceHD95Metric', convention='nnunet', hd95=False,
                     also_log_convention='transunet')
test_evaluator = val_evaluator

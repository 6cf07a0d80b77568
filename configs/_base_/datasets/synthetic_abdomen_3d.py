# The synthetic abdomen as volumes for 3D methods: the same generator, parameters and seed as
# synthetic_abdomen.py (so the same cases), written to its own data root with the training
# cases also stored as volumes. Patches of T x 128 x 128 (T = the model's num_frames).
dataset_type = 'SyntheticAbdomenVolumeDataset'
data_root = 'data/synthetic_abdomen_3d'
generator = dict(num_train_cases=8, num_test_cases=4, size=128, depth=32, seed=0)
patch_size = (4, 128, 128)
meta_keys = ('img_path', 'case_id', 'spacing', 'native_shape', 'ori_shape', 'img_shape')
# No mirroring and no rotation here: the organs have a fixed left/right layout (kidneys) and
# the tiny models train for a few hundred iterations; the nnU-Net augmentation set is in the
# real-data configs (_base_/datasets/*_3d.py).
train_pipeline = [
    dict(type='LoadVolume'),
    dict(type='NormalizeIntensity3D', mode='ct'),
    dict(type='RandomPatchCrop3D', patch_size=patch_size, fg_prob=0.5),
    dict(type='PackVolumeInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadVolume', native_label=True),
    dict(type='NormalizeIntensity3D', mode='ct'),
    dict(type='PackVolumeInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator,
                 split='train_volumes', volume_dir='train_volumes', samples_per_epoch=64,
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator, split='test',
                 volume_dir='test_volumes', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
# The 2D demo's protocol (TransUNet: Dice and HD95 per volume) so the tables compare; the
# nnU-Net convention is logged beside it.
# HD95 in voxels, as the 2D demo and the seed references in configs/*/results/.
val_evaluator = dict(type='VolumeDiceHD95Metric', use_spacing=False,
                     also_log_convention='nnunet')
test_evaluator = val_evaluator

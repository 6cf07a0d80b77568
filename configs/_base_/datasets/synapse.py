# Synapse multi-organ CT (BTCV, TransUNet split: 18 train / 12 test cases) in mmsam's format,
# as written by tools/dataset_converters/synapse.py under data_root (few-shot subsets, e.g.
# split='train_10pct', are written there too).
_base_ = ['./slice_augmentations.py']
dataset_type = 'SynapseDataset'  # classes and palette in mmsam/datasets/synapse_dataset.py
data_root = 'data/synapse'
meta_keys = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'reduce_zero_label', 'case_id', 'slice_index', 'num_slices',
             'spacing')
# H-SAM's augmentation (Sec. 4.2: rotation, scaling and elastic deformation) with the official
# magnitudes (slice_augmentations.py); SAMed's configs replace it with SAMed's.
train_pipeline = [
    dict(type='LoadNpzSlice'),
    {{_base_.hsam_augmentation}},
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadNpzSlice'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=12,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
# HD95 in voxels, as TransUNet, SAMed and H-SAM report it (the TransUNet release has no
# spacing); the metric's default, use_spacing='auto', would give mm for BTCV conversions.
val_evaluator = dict(type='VolumeDiceHD95Metric', use_spacing=False)
test_evaluator = val_evaluator

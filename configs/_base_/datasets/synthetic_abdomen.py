# The embedded-default multi-organ data: generated under data_root on first use (seeded).
dataset_type = 'SyntheticAbdomenDataset'
data_root = 'data/synthetic_abdomen'
generator = dict(num_train_cases=8, num_test_cases=4, size=128, depth=32, seed=0)
meta_keys = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'reduce_zero_label', 'case_id', 'slice_index', 'num_slices',
             'spacing')
train_pipeline = [
    dict(type='LoadNpzSlice'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadNpzSlice'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator, split='train',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator, split='test',
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
# HD95 in voxels: the seed references in configs/*/results/ (compared by `make demo`) were
# measured so. A config for data with known spacing sets use_spacing='auto' (mm).
val_evaluator = dict(type='VolumeDiceHD95Metric', use_spacing=False)
test_evaluator = val_evaluator

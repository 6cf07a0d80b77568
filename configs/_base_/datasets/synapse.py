# Synapse multi-organ CT (BTCV, TransUNet split: 18 train / 12 test cases) in mmsam's format,
# as written by tools/dataset_converters/synapse.py under data_root.
dataset_type = 'VolumeSliceDataset'
data_root = 'data/synapse'
metainfo = dict(
    classes=('background', 'spleen', 'right_kidney', 'left_kidney', 'gallbladder', 'liver',
             'stomach', 'aorta', 'pancreas'),
    palette=[[0, 0, 0], [220, 20, 60], [0, 128, 0], [0, 0, 255], [255, 255, 0],
             [255, 128, 0], [128, 0, 255], [255, 0, 255], [0, 255, 255]])
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
    batch_size=12,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo, split='train',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo, split='test',
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='VolumeDiceHD95Metric')
test_evaluator = val_evaluator

# PROMISE12 prostate T2-weighted MRI (MICCAI 2012 challenge, its 50 training cases; MLB-Seg
# split: 40 training / 10 test cases, Case40-Case49 as test) in mmsam's format, as written by
# tools/dataset_converters/promise12.py under data_root. split='train' holds the slices of the
# 3 labelled cases (H-SAM's few-shot setting); 'train_all' those of all 40 (--all-train).
dataset_type = 'PROMISE12Dataset'  # classes and palette in mmsam/datasets/promise12_dataset.py
data_root = 'data/promise12'
img_scale = (512, 512)  # slices are resized to 512 x 512 (H-SAM, sec. 4.1)
meta_keys = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'reduce_zero_label', 'case_id', 'slice_index', 'num_slices',
             'spacing')
train_pipeline = [
    dict(type='LoadNpzSlice'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadNpzSlice'),
    # Only the image is resized: the KeyMapper hides gt_seg_map from Resize, so the label keeps
    # the slice's original shape (ori_shape), which is where postprocess_result resizes the
    # prediction back to, and the metric compares both at the original resolution.
    dict(type='KeyMapper', mapping=dict(gt_seg_map=...), auto_remap=False,
         transforms=[dict(type='Resize', scale=img_scale, keep_ratio=False)]),
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
val_evaluator = dict(type='VolumeDiceHD95Metric')
test_evaluator = val_evaluator

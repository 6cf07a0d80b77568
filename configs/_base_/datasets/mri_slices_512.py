# Slice-trained, volume-tested MRI in mmsam's format, slices resized to 512 x 512 for the model
# and evaluated at their original size. The LA and PROMISE12 bases add the dataset type and root.
_base_ = ['./slice_augmentations.py']
img_scale = (512, 512)  # slices are resized to 512 x 512 (H-SAM, sec. 4.1)
meta_keys = ('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'reduce_zero_label', 'case_id', 'slice_index', 'num_slices',
             'spacing')
# H-SAM's augmentation with the official magnitudes on the native slice, then the resize to
# 512 x 512 (the official code augments, then zooms to the network size).
train_pipeline = [
    dict(type='LoadNpzSlice'),
    {{_base_.hsam_augmentation}},
    dict(type='Resize', scale=img_scale, keep_ratio=False, interpolation='bicubic'),
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
    dataset=dict(split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='test', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
# HD95 in voxels, as H-SAM reports it for LA and PROMISE12 (medpy's hd95 without spacing).
val_evaluator = dict(type='VolumeDiceHD95Metric', use_spacing=False)
test_evaluator = val_evaluator

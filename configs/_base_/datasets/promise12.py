# PROMISE12 prostate T2-weighted MRI (MICCAI 2012 challenge, its 50 training cases; MLB-Seg
# split: 40 training / 10 test cases) in mmsam's format, as written by
# tools/dataset_converters/promise12.py under data_root. By default the converter writes H-SAM's
# published split: test Case16, 35, 34, 49, 23, 12, 28, 43, 20, 13 and, as split='train', the
# foreground slices of the 3 labelled cases Case29, Case14, Case05; 'train_all' holds all 40
# training cases' slices (--all-train).
_base_ = ['./mri_slices_512.py', './slice_augmentations.py']
dataset_type = 'PROMISE12Dataset'  # classes and palette in mmsam/datasets/promise12_dataset.py
data_root = 'data/promise12'
# H-SAM's augmentation with the official magnitudes on the native slice, then the resize to
# 512 x 512 (the official code augments, then zooms to the network size).
train_pipeline = [
    dict(type='LoadNpzSlice'),
    {{_base_.hsam_augmentation}},
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=False, interpolation='bicubic'),
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

# Left atrium LGE-MRI (2018 Atrial Segmentation Challenge, UA-MT's preprocessed release;
# UA-MT/BCP split: 80 training / 20 test scans) in mmsam's format, as written by
# tools/dataset_converters/la.py under data_root. split='train' holds H-SAM's published
# training slices (the foreground slices of the 4 labelled scans, the 5% setting); 'train_all'
# the slices of all 80 (--all-train).
_base_ = ['./mri_slices_512.py', './slice_augmentations.py']
dataset_type = 'LADataset'  # classes and palette in mmsam/datasets/la_dataset.py
data_root = 'data/la'
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

# PROMISE12 prostate T2-weighted MRI (MICCAI 2012 challenge, its 50 training cases; MLB-Seg
# split: 40 training / 10 test cases) in mmsam's format, as written by
# tools/dataset_converters/promise12.py under data_root. By default the converter writes H-SAM's
# published split: test Case16, 35, 34, 49, 23, 12, 28, 43, 20, 13 and, as split='train', the
# foreground slices of the 3 labelled cases Case29, Case14, Case05; 'train_all' holds all 40
# training cases' slices (--all-train).
_base_ = ['./mri_slices_512.py']
dataset_type = 'PROMISE12Dataset'  # classes and palette in mmsam/datasets/promise12_dataset.py
data_root = 'data/promise12'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

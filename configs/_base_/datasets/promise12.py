# PROMISE12 prostate T2-weighted MRI (MICCAI 2012 challenge, its 50 training cases; MLB-Seg
# split: 40 training / 10 test cases, Case40-Case49 as test) in mmsam's format, as written by
# tools/dataset_converters/promise12.py under data_root. split='train' holds the slices of the
# 3 labelled cases (H-SAM's few-shot setting); 'train_all' those of all 40 (--all-train).
_base_ = ['./mri_slices_512.py']
dataset_type = 'PROMISE12Dataset'  # classes and palette in mmsam/datasets/promise12_dataset.py
data_root = 'data/promise12'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

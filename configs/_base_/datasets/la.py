# Left atrium LGE-MRI (2018 Atrial Segmentation Challenge, UA-MT's preprocessed release;
# UA-MT/BCP split: 80 training / 20 test scans) in mmsam's format, as written by
# tools/dataset_converters/la.py under data_root. split='train' holds H-SAM's published
# training slices (the foreground slices of the 4 labelled scans, the 5% setting); 'train_all'
# the slices of all 80 (--all-train).
_base_ = ['./mri_slices_512.py']
dataset_type = 'LADataset'  # classes and palette in mmsam/datasets/la_dataset.py
data_root = 'data/la'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader

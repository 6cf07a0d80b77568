# LIDC-IDRI lung-nodule crops (128 x 128, 4 readers; Kohl et al.'s release) converted with
# tools/dataset_converters/lidc.py: 80/10/10 split by patient series (the converter's default,
# recommended: no series in two splits), resized to 1024 x 1024. The official SeqSAM split:
# lidc_seqsam-split.py.
_base_ = ['./multi_annotator_1024.py']
dataset_type = 'LIDCDataset'
data_root = 'data/lidc'
train_dataloader = dict(
    batch_size=2,  # SeqSAM's batch size
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 split_protocol='by-series', pipeline={{_base_.train_pipeline}}),
)
val_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 split_protocol='by-series', test_mode=True,
                 pipeline={{_base_.test_pipeline}}),
)
test_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 split_protocol='by-series', test_mode=True,
                 pipeline={{_base_.test_pipeline}}),
)
val_evaluator = dict(type='GEDMetric')
test_evaluator = val_evaluator

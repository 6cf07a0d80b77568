# LIDC-IDRI lung-nodule crops (128 x 128, 4 readers; Kohl et al.'s release) converted with
# tools/dataset_converters/lidc.py: 80/10/10 split by patient series. Crops are resized to SAM's
# 1024 x 1024 input; one box prompt per image from the extremity points of a randomly chosen
# non-empty annotation (seeded per image at test time, so evaluation is repeatable).
dataset_type = 'LIDCDataset'
data_root = 'data/lidc'
img_scale = (1024, 1024)
train_pipeline = [
    dict(type='LoadMultiAnnotatorSample'),
    dict(type='BoxPromptFromAnnotation'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackMultiAnnotatorInputs'),
]
test_pipeline = [
    dict(type='LoadMultiAnnotatorSample'),
    dict(type='BoxPromptFromAnnotation', seed=0),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackMultiAnnotatorInputs'),
]
train_dataloader = dict(
    batch_size=2,  # SeqSAM's batch size
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', test_mode=True,
                 pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline=test_pipeline),
)
val_evaluator = dict(type='GEDMetric')
test_evaluator = val_evaluator

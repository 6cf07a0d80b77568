# QUBIQ 2020 kidney (2D CT, 3 annotators), converted with tools/dataset_converters/qubiq.py:
# the release's 20 training / 4 validation cases as train / test, as SeqSAM uses them. There is
# no validation split (convert with --val-cases to make one), so there is no validation during
# training: the last checkpoint is tested. As the official SeqSAM code, every sample is first
# brought to 256 x 256 (image bicubic, masks nearest) and evaluated there; the network input
# is 1024 x 1024.
_base_ = ['./multi_annotator_1024.py']
dataset_type = 'QUBIQKidneyDataset'
data_root = 'data/qubiq_kidney'
sample_size = (256, 256)  # None: the native resolution
img_scale = {{_base_.img_scale}}
train_pipeline = [
    dict(type='LoadMultiAnnotatorSample', resize_to=sample_size),
    dict(type='BoxPromptFromAnnotation'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackMultiAnnotatorInputs'),
]
test_pipeline = [
    dict(type='LoadMultiAnnotatorSample', resize_to=sample_size),
    dict(type='BoxPromptFromAnnotation', seed=0),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackMultiAnnotatorInputs'),
]
train_dataloader = dict(
    batch_size=2,  # SeqSAM's batch size
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
)
val_dataloader = None
val_evaluator = None
test_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline=test_pipeline),
)
test_evaluator = dict(type='GEDMetric')

# QUBIQ 2020 kidney (2D CT, 3 annotators), converted with tools/dataset_converters/qubiq.py:
# the challenge's 20 training / 4 test cases, as SeqSAM uses them. There is no validation split
# (convert with --val-cases to make one), so there is no validation during training: the last
# checkpoint is tested. Images are resized to 1024 x 1024.
_base_ = ['./multi_annotator_1024.py']
dataset_type = 'QUBIQKidneyDataset'
data_root = 'data/qubiq_kidney'
train_dataloader = dict(
    batch_size=2,  # SeqSAM's batch size
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline={{_base_.train_pipeline}}),
)
val_dataloader = None
val_evaluator = None
test_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 pipeline={{_base_.test_pipeline}}),
)
test_evaluator = dict(type='GEDMetric')

# The embedded-default multi-annotator data: LIDC-like 128 x 128 lesion crops with 4 readers,
# generated under data_root on first use (seeded). One box prompt per image from a randomly
# chosen non-empty annotation (seeded per image at test time).
dataset_type = 'SyntheticLesionDataset'
data_root = 'data/synthetic_lesions'
generator = dict(num_train=400, num_val=50, num_test=100, size=128, num_annotators=4, seed=0)
img_scale = (128, 128)  # the network input (the tiny models)
train_pipeline = [
    dict(type='LoadMultiAnnotatorSample'),
    dict(type='BoxPromptFromAnnotation', jitter=2),
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
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator, split='train',
                 pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator, split='val',
                 test_mode=True, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, generator=generator, split='test',
                 test_mode=True, pipeline=test_pipeline),
)
val_evaluator = dict(type='GEDMetric')
test_evaluator = val_evaluator

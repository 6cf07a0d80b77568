# Pipelines of the multi-annotator data sets at SAM's 1024 x 1024 input (LIDC-IDRI, QUBIQ):
# all readers' masks are loaded and packed; one box prompt per image from the extremity points
# of a randomly chosen non-empty annotation (seeded per image at test time, so evaluation is
# repeatable); images are resized without padding, as MedSAM does.
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

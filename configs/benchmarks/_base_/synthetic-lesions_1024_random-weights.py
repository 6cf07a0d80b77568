# Benchmark base (tools/analysis_tools/benchmark.py): the synthetic lesions resized up to SAM's
# real input, 1024 x 1024, batch 1. Not a training recipe: the lesions are 128 px crops.
# A config in configs/benchmarks takes a box-prompted ViT-B model config and
# `model = {{_base_.random_weights}}`, which drops the SAM checkpoints (none can be downloaded
# here; remove that line to time real ones).
_base_ = [
    '../../_base_/datasets/synthetic_lesions.py',
    '../../_base_/schedules/seqsam_official_schedule.py',
    '../../_base_/multi_annotator_runtime.py',
]
img_scale = (1024, 1024)
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=[
                            dict(type='LoadMultiAnnotatorSample'),
                            dict(type='BoxPromptFromAnnotation', jitter=2),
                            dict(type='Resize', scale=img_scale, keep_ratio=False),
                            dict(type='PackMultiAnnotatorInputs'),
                        ]))
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                       dataset=dict(pipeline=[
                           dict(type='LoadMultiAnnotatorSample'),
                           dict(type='BoxPromptFromAnnotation', seed=0),
                           dict(type='Resize', scale=img_scale, keep_ratio=False),
                           dict(type='PackMultiAnnotatorInputs'),
                       ]))
random_weights = dict(backbone=dict(checkpoint=None),
                      decode_head=dict(prompt_encoder=dict(checkpoint=None),
                                       mask_decoder=dict(checkpoint=None)))

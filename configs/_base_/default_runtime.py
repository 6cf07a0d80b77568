# Runtime shared by every mmsam config.
default_scope = 'mmsam'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # without CUDA, mmsam.engine's runner uses gloo instead
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# SAM heads leave some SAM parameters unused (e.g. box-prompt embeddings in prompt-free heads).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=3,
                    save_best='mDice', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Drawn when tools/test.py gets --show-dir: by default 2 labelled slices of every test
    # case (the hook's interval=1, slices_per_case=2; set them here to change that).
    visualization=dict(type='SliceVisualizationHook'),
)

# The official SeqSAM training run (scripts/run.py: HuggingFace Trainer with its defaults): one
# epoch, AdamW lr 1e-4 (betas 0.9 / 0.999, eps 1e-8), weight decay 0.01 except on biases and
# norm weights, gradient norm clipped at 1.0, the lr decayed linearly to 0 over the run with no
# warm-up; batch 2 (in the data configs). The final model is tested: no checkpoint selection.
max_epochs = 1
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0),
)
# mmengine's LinearLR reaches 0 at the last of the T iterations, lr (1 - t / (T - 1)); the
# HF Trainer's schedule is lr (T - t) / T, one iteration later: a difference of at most lr / T.
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# H-SAM's schedule (paper Sec. 4.2, supplementary Table 7): AdamW (0.9, 0.999), weight decay
# 0.1, initial lr 0.0025 with 250 warm-up iterations, then poly decay (power 0.9), 300 epochs.
# As the official trainer: the poly decay starts when the warm-up ends, over the whole run
# (lr = base * (1 - (i - 250) / max_iters) ** 0.9); the test split is evaluated once, after the
# final epoch (no checkpoint is selected on it); a checkpoint every 50 epochs and the last.
max_epochs = 300
base_lr = 0.0025
warmup_iters = 250
checkpoint_interval = 50  # leaf configs set default_hooks.checkpoint from it
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.1),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / warmup_iters, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLRAfterWarmup', warmup_iters=warmup_iters, end=max_epochs, power=0.9,
         horizon='total', by_epoch=True, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

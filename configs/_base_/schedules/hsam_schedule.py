# H-SAM's schedule (paper Sec. 4.2, supplementary Table 7): AdamW (0.9, 0.999), weight decay
# 0.1, initial lr 0.0025 with 250 warm-up iterations, then poly decay, 300 epochs.
max_epochs = 300
base_lr = 0.0025
warmup_iters = 250
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.1),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / warmup_iters, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=0.9, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=30)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

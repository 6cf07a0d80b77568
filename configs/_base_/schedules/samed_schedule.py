# SAMed's schedule (official train.py / trainer.py): AdamW (0.9, 0.999), weight decay 0.1,
# lr 0.005 with 250 warm-up iterations, then poly decay (power 0.9) computed for 200 epochs,
# which starts when the warm-up ends; training stops after epoch 160 (stop_epoch), evaluated
# once at the end (no checkpoint selection on the test split); a checkpoint every 20 epochs.
max_epochs = 200  # the poly decay's horizon
stop_epoch = 160  # where training ends
base_lr = 0.005
warmup_iters = 250
checkpoint_interval = 20  # leaf configs set default_hooks.checkpoint from it
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
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=stop_epoch, val_interval=stop_epoch)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

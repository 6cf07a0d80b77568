# SeqSAM's training setup: AdamW, lr 1e-4, weight decay 0.01 (batch 2 in the data configs),
# "until convergence": a fixed epoch budget (configs keep the checkpoint with the best
# validation GED).
max_epochs = 20
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
)
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

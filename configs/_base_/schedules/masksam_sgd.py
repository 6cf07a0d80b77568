# MaskSAM's (nnU-Net's) schedule: SGD lr 1e-3, momentum 0.99 Nesterov, weight decay 3e-5,
# poly decay (power 0.9) stepped per epoch, gradient norm clipped at 12; 1000 epochs of 250
# iterations (an epoch is `samples_per_epoch` patches of the training dataset, set to
# 250 x the global batch in the dataset configs). The final checkpoint is evaluated, as
# nnUNetv2_predict uses checkpoint_final. On a GPU add --amp (fp16, as the official code).
max_epochs = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.99, nesterov=True, weight_decay=3e-5),
    clip_grad=dict(max_norm=12),
)
# No `end`: the Runner sets it to train_cfg.max_epochs, so a config (or --cfg-options) that
# changes the number of epochs keeps the decay reaching 0 at the last epoch.
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, by_epoch=True, begin=0)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

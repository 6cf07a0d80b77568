# The public Probabilistic SAM recipe (main.py / train.py of tbwa233/Probabilistic-SAM): Adam,
# lr 1e-4, no weight decay, no schedule, 10 epochs of batch 1 (in the config). The public code
# keeps the final model.
max_epochs = 10
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
)
param_scheduler = []
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# The CPU budget of the synthetic-lesion configs: SeqSAM's AdamW (batch 8 here), with a larger
# lr than fine-tuning SAM (1e-4) because the tiny model trains from scratch, a short warm-up
# and cosine decay; 20 epochs of 400 images (1000 iterations).
_base_ = ['./ambiguous_schedule.py']
max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)

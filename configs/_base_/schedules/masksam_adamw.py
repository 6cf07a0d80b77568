# MaskSAM's AMOS schedule: AdamW lr 1e-3, weight decay 3e-5, eps 1e-4, otherwise as
# masksam_sgd.py (poly per epoch, clipping at 12, 1000 epochs x 250 iterations).
_base_ = ['./masksam_sgd.py']
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=3e-5, eps=1e-4))

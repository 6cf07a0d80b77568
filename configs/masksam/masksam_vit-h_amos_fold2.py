# MaskSAM on AMOS22 CT, cross-validation fold 2: masksam_vit-h_amos_fold0.py with fold = 2.
# The splits are set again here: those of the base were formatted with its own fold.
_base_ = ['./masksam_vit-h_amos_fold0.py']
fold = 2
train_dataloader = dict(dataset=dict(split=f'fold{fold}_train'))
val_dataloader = dict(dataset=dict(split=f'fold{fold}_val'))
test_dataloader = val_dataloader

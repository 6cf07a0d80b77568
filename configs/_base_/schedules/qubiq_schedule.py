# SeqSAM's optimiser on QUBIQ kidney: 20 training images (10 iterations of batch 2 an epoch),
# so a longer epoch budget (5000 iterations) and no validation (no val split).
_base_ = ['./ambiguous_schedule.py']
max_epochs = 500
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None

# The official SeqSAM run (seqsam_official_schedule.py) on QUBIQ kidney: one epoch of the 20
# training images (10 iterations of batch 2), the lr decayed linearly to 0; no validation
# split, so no validation.
_base_ = ['./seqsam_official_schedule.py']
train_cfg = dict(val_interval=2)
val_cfg = None

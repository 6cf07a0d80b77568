# Fine-tuning a box-prompted head on the tiny MedSAM's frozen encoder (synthetic lesions): the
# same 20 epochs, warm-up and cosine decay as training from scratch, at SeqSAM's lr 1e-4.
_base_ = ['./synthetic_lesion_schedule.py']
optim_wrapper = dict(optimizer=dict(lr=1e-4))

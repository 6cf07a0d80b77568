# Probabilistic SAM on MedSAM ViT-B weights, QUBIQ kidney: frozen encoder (its embeddings are cached
# on disk after the first epoch), AdamW lr 1e-4, weight decay 0.01, batch 2 (the setting of the
# other QUBIQ configs), beta = 10, latent size 6; the prior/posterior nets read the image at
# 256 x 256. Test: M = 16.
_base_ = [
    '../_base_/models/psam_medsam_vit-b.py',
    '../_base_/datasets/qubiq_kidney.py',
    '../_base_/schedules/qubiq_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(net_input_size=256), test_cfg=dict(num_hypotheses=16))
default_hooks = dict(checkpoint=dict(interval=100, save_best=None))

# Probabilistic SAM on MedSAM ViT-B weights, LIDC-IDRI: frozen encoder (its embeddings are cached on
# disk after the first epoch), AdamW lr 1e-4, weight decay 0.01, batch 2 (the setting of the
# other LIDC configs), beta = 10, latent size 6. The prior/posterior nets read the image at
# the crops' own 128 x 128 (the converter upsamples them to 1024 for SAM). Test: M = 16.
_base_ = [
    '../_base_/models/psam_medsam_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/ambiguous_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(net_input_size=128), test_cfg=dict(num_hypotheses=16))
default_hooks = dict(checkpoint=dict(save_best='GED', rule='less'))

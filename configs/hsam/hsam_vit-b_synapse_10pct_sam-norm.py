# H-SAM 10% Synapse with SAM's pixel normalisation (ImageNet mean / std on 0-255) instead of
# the official [0, 1] input, for comparison (README "differences" table).
_base_ = ['./hsam_vit-b_synapse_10pct.py']
model = dict(data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]))

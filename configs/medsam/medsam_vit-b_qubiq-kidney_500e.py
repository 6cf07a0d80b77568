# medsam_vit-b_qubiq-kidney.py with mmsam's earlier, longer run instead of the official one epoch:
# 500 epochs (5000 iterations) at a constant lr 1e-4; it over-fits the 20 training images.
_base_ = [
    '../_base_/models/medsam_vit-b.py',
    '../_base_/datasets/qubiq_kidney.py',
    '../_base_/schedules/qubiq_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
default_hooks = dict(checkpoint=dict(interval=100, save_best=None))

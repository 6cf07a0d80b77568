# SeqSAM M=10 on SAM ViT-B, QUBIQ kidney with mmsam's earlier, longer run instead of the
# official one epoch (seqsam_vit-b_qubiq-kidney_m10.py): 500 epochs (5000 iterations) at a
# constant lr 1e-4. With 20 training images and no validation split it over-fits; kept for
# comparison.
_base_ = [
    '../_base_/models/seqsam_vit-b.py',
    '../_base_/datasets/qubiq_kidney.py',
    '../_base_/schedules/qubiq_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(num_hypotheses=10))
default_hooks = dict(checkpoint=dict(interval=100, save_best=None))

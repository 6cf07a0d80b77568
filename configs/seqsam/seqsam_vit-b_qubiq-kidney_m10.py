# SeqSAM M=10 on SAM ViT-B weights, QUBIQ kidney (SeqSAM Table 1A), the official protocol:
# frozen encoder (embeddings cached), the release's 20 training / 4 validation cases as train /
# test at 256 x 256, one epoch (10 iterations of batch 2, AdamW lr 1e-4 decayed linearly to 0),
# the final model tested. The longer run: seqsam_vit-b_qubiq-kidney_m10_500e.py.
_base_ = [
    '../_base_/models/seqsam_vit-b.py',
    '../_base_/datasets/qubiq_kidney.py',
    '../_base_/schedules/seqsam_official_qubiq_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(num_hypotheses=10))
default_hooks = dict(checkpoint=dict(save_best=None))

# SeqSAM M=10 on SAM ViT-B weights, QUBIQ kidney (SeqSAM Table 1A): frozen encoder (its
# embeddings are cached on disk after the first epoch), AdamW lr 1e-4, weight decay 0.01, batch 2.
_base_ = [
    '../_base_/models/seqsam_vit-b.py',
    '../_base_/datasets/qubiq_kidney.py',
    '../_base_/schedules/qubiq_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
model = dict(decode_head=dict(num_hypotheses=10))
default_hooks = dict(checkpoint=dict(interval=100, save_best=None))

# MedSAM (box prompt, one mask, Dice against one random non-empty reader)
# on QUBIQ kidney, SeqSAM's Table 1 baseline with the official protocol: ViT-B at 1024, frozen
# encoder (embeddings cached), the release's 20 / 4 cases at 256 x 256, one epoch (10 iterations
# of batch 2, AdamW lr 1e-4 decayed linearly to 0), the final model tested. The longer run:
# medsam_vit-b_qubiq-kidney_500e.py.
_base_ = [
    '../_base_/models/medsam_vit-b.py',
    '../_base_/datasets/qubiq_kidney.py',
    '../_base_/schedules/seqsam_official_qubiq_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
default_hooks = dict(checkpoint=dict(save_best=None))

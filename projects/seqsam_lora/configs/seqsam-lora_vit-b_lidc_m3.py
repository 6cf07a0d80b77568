# SeqSAM's recurrent head on a LoRA-adapted SAM ViT-B encoder (rank 4 on q and v, as SAMed):
# the encoder's SAM weights stay frozen, its LoRA adapters train with the head. Config only.
# The embedding cache turns itself off here (the encoder has trainable parameters).
_base_ = ['../../../configs/seqsam/seqsam_vit-b_lidc_m3.py']
model = dict(backbone=dict(adapter=dict(type='LoRA', rank=4, targets=('q', 'v'))))

# The same combination on the synthetic lesions (CPU, minutes): the tiny encoder is frozen at its
# random initialisation and only LoRA adapters (rank 4 on q and v) and the SeqSAM head train.
_base_ = ['../../../configs/seqsam/seqsam_synthetic-lesion.py']
model = dict(backbone=dict(frozen=True,
                           adapter=dict(type='LoRA', rank=4, targets=('q', 'v'))))

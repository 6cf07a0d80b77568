# The same combination on the synthetic lesions (CPU, minutes): the tiny MedSAM's encoder
# (checkpoints/tiny-medsam_synthetic-lesion.pth, see configs/medsam/README.md) stays frozen and
# only LoRA adapters (rank 4 on q and v) and the SeqSAM head train.
_base_ = ['../../../configs/seqsam/seqsam_vit-tiny_synthetic-lesion.py']
model = dict(backbone=dict(adapter=dict(type='LoRA', rank=4, targets=('q', 'v'))))

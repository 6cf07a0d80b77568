# SeqSAM on MedSAM's weights (Table 1's "MedSAM + SeqSAM" rows), with SAM's input normalisation
# as the official SeqSAM code's processor applies it to every model (MedSAM itself expects
# [0, 1]: box_prompt_medsam_vit-b.py's normalisation).
_base_ = ['./box_prompt_medsam_vit-b.py', './seqsam_head.py']
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
model = dict(data_preprocessor=data_preprocessor, decode_head={{_base_.seqsam_head}})

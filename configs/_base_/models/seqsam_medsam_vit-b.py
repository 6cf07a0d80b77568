# SeqSAM on MedSAM's weights and input normalisation (Table 1's "MedSAM + SeqSAM" rows).
_base_ = ['./box_prompt_medsam_vit-b.py', './seqsam_head.py']
model = dict(decode_head={{_base_.seqsam_head}})

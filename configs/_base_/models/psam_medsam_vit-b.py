# Probabilistic SAM on MedSAM's weights and input normalisation.
_base_ = ['./box_prompt_medsam_vit-b.py', './psam_head.py']
model = dict(decode_head={{_base_.psam_head}})

# Probabilistic SAM on SAM ViT-B (frozen encoder, box prompt).
_base_ = ['./box_prompt_sam_vit-b.py', './psam_head.py']
model = dict(decode_head={{_base_.psam_head}})

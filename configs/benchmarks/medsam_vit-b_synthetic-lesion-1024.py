# Benchmark only: the MedSAM baseline (frozen SAM ViT-B, box prompt, one mask) at 1024.
_base_ = ['../_base_/models/medsam_vit-b.py', './_base_/synthetic-lesions_1024_random-weights.py']
model = {{_base_.random_weights}}

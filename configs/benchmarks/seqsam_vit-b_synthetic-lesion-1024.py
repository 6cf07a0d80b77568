# Benchmark only: SeqSAM M=3 on a frozen SAM ViT-B at 1024 (embedding cache, M-hypothesis cost).
_base_ = ['../_base_/models/seqsam_vit-b.py', './_base_/synthetic-lesions_1024_random-weights.py']
model = {{_base_.random_weights}}

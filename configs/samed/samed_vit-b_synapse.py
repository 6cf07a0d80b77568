# SAMed (Zhang & Liu, 2023) on Synapse: SAM ViT-B + LoRA r=4, 512 x 512, batch 12, 200 epochs.
# Needs checkpoints/sam_vit_b_01ec64.pth (official SAM ViT-B) and data/synapse (converted).
_base_ = [
    '../_base_/models/samed_vit-b.py',
    '../_base_/datasets/synapse.py',
    '../_base_/schedules/samed_schedule.py',
    '../_base_/default_runtime.py',
]

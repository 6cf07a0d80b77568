# H-SAM 10% Synapse with the main text's stage-loss weight: lambda_w decays from 0.8 with
# coefficient 0.005 (w = 1 - 0.2 ** (0.995 ** epoch)) instead of the supplementary's 0.4 / 0.01.
_base_ = ['./hsam_vit-b_synapse_10pct.py']
custom_hooks = [dict(type='StageLossWeightHook', start=0.8, decay=0.005)]

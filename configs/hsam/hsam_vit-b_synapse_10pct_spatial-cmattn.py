# H-SAM 10% Synapse with mmsam's spatial reading of CMAttn (self-attention among the h * w
# positions, width 256, one weight per position; 0.27M parameters) instead of the official
# build's attention among the class maps (12.6M), on the official network otherwise.
_base_ = ['./hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(cmattn_mode='spatial', cmattn_weighting='tanh'))

# H-SAM 10% Synapse, the official network with a working CMAttn: the official block's softmax
# over its single compressed channel is 1 everywhere (the block is a constant 2x of the
# stage-2 input); here the weight is 1 + tanh(a), so the class-map attention changes it.
_base_ = ['./hsam_vit-b_synapse_10pct.py']
model = dict(decode_head=dict(cmattn_weighting='tanh'))

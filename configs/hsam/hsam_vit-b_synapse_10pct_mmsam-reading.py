# H-SAM 10% Synapse as mmsam read the paper before the official code was run against it
# (configs/hsam/README.md, "differences"): SAM's block order in stage 1, stage 2 a second SAM
# decoder (IoU token, downsampled cross-attention, mask on token-to-image attention only),
# mmsam's hierarchical pixel decoder (stage-1 features added, D/8 transposed convs, 3-layer
# hypernetworks), the bounded class-token CMAttn (tanh) on softmax-normalised mask features
# with class-balanced noise from class frequencies, the area-averaged prior, probability
# averaging, 4 point embeddings. The encoder (LoRA rank 5, bilinear position table), the
# zoomed stage-1 labels and the schedule stay the official ones. Official checkpoints do not
# load into it.
_base_ = ['./hsam_vit-b_synapse_10pct.py']
model = dict(
    decode_head=dict(
        prompt_encoder=dict(num_point_embeddings=4),
        mask_decoder=dict(block_order='sam'),
        stage2_decoder=None,
        cmattn_mode='class_tokens',
        cmattn_weighting='tanh',
        prior_resize='area',
        stage_fusion='probs'))

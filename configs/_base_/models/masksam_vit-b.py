# MaskSAM (seed 003) on SAM ViT-B, Synapse geometry (T=26 slices of 256 x 256, Q=24 queries,
# 8 organs + background). Frozen SAM (encoder, prompt encoder, mask decoder); trainable: the
# 3D stem, the encoder's depth embedding and DConv adapters (after attention with skip, and
# 0.5 x parallel to the MLP in every block), the prompt generator, the decoder's DMLP/DConv
# adapters and depth PE, the class token and classifier, and the 3D mask refinement.
# The official network (bxie9/MaskSAM's SAMAdapter_2024_AMOS_SmallPatch_FinalLayerCNN_TQReshape_*
# and its build_sam branch), each official quirk a named switch (mmsam's reading in brackets):
# the patch sits in the top-left of SAM's 1024 frame: pos_embed_resize='top_left' ('bicubic'),
# canvas_size=1024 (None); windowed encoder blocks pad before norm1 and run the DConv adapter on
# the padded windows: norm_after_pad=True (False), space_adapter_on='windows' ('slices');
# prompt boxes floored on the patch's pixels: box_pixel_grid='patch' ('encoder_input'); the
# auxiliary masks enter the losses as probabilities: aux_mask_input='probs' ('logits').
# An official nnU-Net checkpoint converts with tools/model_converters/masksam2mmsam.py.
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
model = dict(
    type='VolumeSAMSegmentor',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    stem=dict(type='VolumeStem', in_channels=1, channels=(8,), out_channels=3),
    backbone=dict(
        type='SAMImageEncoder',
        arch='vit_b',
        img_size=256,
        num_frames=26,
        out_indices=(2, 5, 8, 11),  # the global-attention blocks, read by the prompt generator
        with_neck_output=True,
        frozen=True,
        adapter=dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter'), mlp_scale=0.5,
                     norm_after_pad=True, space_adapter_on='windows'),
        pos_embed_resize='top_left',
        checkpoint=sam_checkpoint,
    ),
    neck=dict(type='MaskSAMPromptGenerator', embed_dim=768, num_frames=26, num_queries=24,
              input_size=256),
    decode_head=dict(
        type='MaskSAMHead',
        num_classes=9,
        num_frames=26,
        num_queries=24,
        prompt_encoder=dict(type='MaskSAMPromptEncoder', embed_dim=256, img_size=256,
                            patch_size=16, canvas_size=1024, frozen=True,
                            checkpoint=sam_checkpoint),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=256, frozen=True,
                          checkpoint=sam_checkpoint),
        decoder_adapter=dict(type='MaskSAMDecoderAdapter', token_adapter=dict(type='DMLPAdapter'),
                             image_adapter=dict(type='DConvAdapter'), final_attn=True),
        depth_pos_embed=True,
        prompt_mode='mask_avg_box',
        box_pixel_grid='patch',
        refine=dict(type='MaskRefine3D', hidden=64, upsample=4),
        # the official criterion reads the generator's sigmoid probabilities as logits (a
        # double sigmoid); mmsam's reading: aux_mask_input='logits'
        loss_decode=dict(type='MaskClassificationCriterion', num_points=32768,
                         aux_mask_input='probs'),
    ),
    # nnU-Net's prediction: sliding window with step 0.5, Gaussian weighting, 8-flip mirroring,
    # scores resampled to the case's original grid.
    test_cfg=dict(mode='slide3d', step_size=0.5, mirror_axes=(0, 1, 2)),
)

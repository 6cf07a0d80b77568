# H-SAM, the official network (github.com/Cccccczh404/H-SAM 5bdf491, its 512 build): SAMed's
# encoder (SAM ViT-B + LoRA rank 5 on q and v, 512 x 512, position table resized bilinearly)
# with a two-stage hierarchical decoder. Each official quirk is a named switch; mmsam's reading
# of the paper is configs/hsam/hsam_vit-b_synapse_10pct_mmsam-reading.py. An official checkpoint
# converts with tools/model_converters/hsam2mmsam.py (configs/hsam/README.md, Model zoo).
_base_ = ['./samed_vit-b.py']
model = dict(
    backbone=dict(
        adapter=dict(rank=5),  # the official --rank default
        pos_embed_resize='bilinear',  # build_sam.load_from
    ),
    decode_head=dict(
        type='HSAMHead',
        # 11 point embeddings (never used prompt-free, but in the files and the count)
        prompt_encoder=dict(type='HSAMPromptEncoder', num_point_embeddings=11),
        # stage 1: SAM's decoder, the two-way blocks running token-to-image attention first
        mask_decoder=dict(type='HSAMMaskDecoder', block_order='cross_first'),
        # stage 2: no IoU token, Attention2 (no downsampling, prior on both cross-attentions),
        # dropout 0.2, concatenated 1/4-scale skip, D/16 transposed convs, 5-layer
        # hypernetworks (widths follow mask_decoder's; the fixture check sets them)
        stage2_decoder=dict(type='HSAMStage2Decoder', transformer_dim=256,
                            transformer_depth=2, transformer_mlp_dim=2048,
                            transformer_num_heads=8, iou_head_depth=3, iou_head_hidden_dim=256,
                            hypernetwork_depth=5, dropout=0.2,
                            masked_attention_downsample_rate=1),
        # Table 4's switches: each ablation row is a config that turns some of them off.
        mask_guided_self_attention=True,
        class_balance=True,
        mask_cross_attention='learnable',
        hierarchical_pixel_decoder=True,
        # the prior: softmax(bilinear(stage-1 logits)) at the embedding grid
        prior_resize='bilinear',
        # the official CMAttn among the C class maps (width h * w = 1024 at 512, 8 heads, MLP
        # 2048) with its softmax over one channel: a constant 2x (README, differences)
        cmattn_mode='official',
        cmattn_weighting='softmax',
        cmattn_mlp_dim=2048,
        attention_heads=8,
        # official: N(0, 1) * 0.2 * (max - min) added to stage 2's input embedding in training
        embedding_noise=0.2,
        # official test (utils.test_single_volume): (stage-1 + stage-2 logits) / 2
        stage_fusion='logits',
        # official trainer.calc_loss with dice_param 0.9 (train.py since 80be503); stage 1 on
        # labels zoomed as the official dataset's low_res_label (scipy zoom(order=0))
        loss_label_resize='zoom',
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.1, loss_name='loss_ce'),
            dict(type='MultiClassDiceLoss', loss_weight=0.9, loss_name='loss_dice'),
        ],
    ))
# lambda_w, the stage-1 loss weight: H-SAM supplementary Table 8 and the official trainer
# (0.4, decaying to ~0 in 300 epochs as 1 - 0.6 ** (0.99 ** epoch)).
custom_hooks = [dict(type='StageLossWeightHook', start=0.4, decay=0.01)]

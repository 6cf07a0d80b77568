# A tiny SAM-architecture ViT (width 64, depth 2, patch 8) at 128 x 128, trained from scratch on
# the synthetic data sets (CPU, minutes; no SAM weights). A config applies it to any SAM model
# config with `model = {{_base_.sam_vit_tiny_128}}`, which merges into the inherited model.
sam_vit_tiny_128 = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dim=64, depth=2, num_heads=4, global_attn_indexes=(1,),
                  patch_size=8, window_size=8, out_chans=64),
        img_size=128,
        frozen=False,  # from scratch: the whole encoder trains
        checkpoint=None,
    ),
    decode_head=dict(
        prompt_encoder=dict(embed_dim=64, img_size=128, patch_size=8, checkpoint=None),
        mask_decoder=dict(transformer_dim=64, transformer_mlp_dim=256, transformer_num_heads=4,
                          iou_head_hidden_dim=64, checkpoint=None),
    ),
)

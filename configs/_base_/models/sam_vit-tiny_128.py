# A tiny SAM-architecture ViT (width 64, depth 2, patch 8) at 128 x 128 for the synthetic data
# sets (CPU, minutes). A config applies one of these to any SAM model config with
# `model = {{_base_.sam_vit_tiny_128}}` (or `..._pretrained`), merged into the inherited model.
# The tiny SAMs are segment-anything's layout, trained in mmsam: the two-way blocks' LayerNorm
# eps is segment-anything's 1e-5 (the HF-layout paper-table heads set 1e-6).
# The encoder's arch alone, for configs that keep their own model otherwise (the SAMed demos):
#   backbone=dict(arch=dict(_delete_=True, **_base_.tiny_vit_arch), ...)
tiny_vit_arch = dict(embed_dim=64, depth=2, num_heads=4, global_attn_indexes=(1,), patch_size=8,
                  window_size=8, out_chans=64)
# Trained from scratch: no weights, the whole encoder trains.
sam_vit_tiny_128 = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(arch=dict(_delete_=True, **tiny_vit_arch), img_size=128, frozen=False,
                  checkpoint=None),
    decode_head=dict(
        prompt_encoder=dict(embed_dim=64, img_size=128, patch_size=8, checkpoint=None),
        mask_decoder=dict(transformer_dim=64, transformer_mlp_dim=256, transformer_num_heads=4,
                          iou_head_hidden_dim=64, two_way_layer_norm_eps=1e-5,
                          checkpoint=None),
    ),
)
# The synthetic stand-in for SAM/MedSAM weights: the tiny MedSAM trained from scratch on the
# synthetic lesions (configs/medsam/medsam_vit-tiny_synthetic-lesion.py), exported in SAM's
# layout by tools/model_converters/mmsam2sam.py. Frozen encoder, as the papers fine-tune SAM.
tiny_medsam_checkpoint = 'checkpoints/tiny-medsam_synthetic-lesion.pth'
sam_vit_tiny_128_pretrained = dict(
    # the tiny MedSAM's input normalisation (MedSAM's: intensities scaled to [0, 1])
    data_preprocessor=dict(size=(128, 128), mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0]),
    backbone=dict(arch=dict(_delete_=True, **tiny_vit_arch), img_size=128, frozen=True,
                  checkpoint=tiny_medsam_checkpoint),
    decode_head=dict(
        prompt_encoder=dict(embed_dim=64, img_size=128, patch_size=8,
                            checkpoint=tiny_medsam_checkpoint),
        mask_decoder=dict(transformer_dim=64, transformer_mlp_dim=256, transformer_num_heads=4,
                          iou_head_hidden_dim=64, two_way_layer_norm_eps=1e-5,
                          checkpoint=tiny_medsam_checkpoint),
    ),
)

# A tiny SAM 2 Hiera encoder (widths 16/32/64/128, 6 blocks, neck width 32) at 128 x 128 for the
# synthetic data sets (CPU, minutes); not an official arch (those are 'hiera_t', 'hiera_s',
# 'hiera_b+', 'hiera_l' with SAM 2.1 checkpoints). Equal to mmsam's SAM2_TINY_ARCH (tested).
# FPN levels at 128 px: (B, 32, 32, 32), (B, 32, 16, 16), (B, 32, 8, 8); the last is SAM 2's
# vision_features. A config takes the arch alone with
#   backbone=dict(arch=dict(_delete_=True, **_base_.tiny_hiera_arch), img_size=128, ...)
# or the whole backbone with `backbone={{_base_.sam2_hiera_tiny_128_backbone}}`.
tiny_hiera_arch = dict(embed_dim=16, num_heads=1, stages=(1, 1, 3, 1), global_att_blocks=(3, ),
                       window_spec=(8, 4, 6, 2), window_pos_embed_bkg_spatial_size=(4, 4),
                       d_model=32)
# Trained from scratch: no weights, the whole encoder trains.
sam2_hiera_tiny_128_backbone = dict(type='SAM2ImageEncoder', arch=tiny_hiera_arch, img_size=128,
                                    frozen=False, checkpoint=None)

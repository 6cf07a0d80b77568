# Box-prompted SAM ViT-B at 1024 x 1024 with a frozen image encoder (SeqSAM's setting): one
# encoder pass per image, the head gives M hypothesis masks. The head type is set by each
# method's model config (medsam_vit-b.py, sam-mcl_vit-b.py).
img_size = 1024
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
data_preprocessor = dict(
    type='SAMDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # SAM's pixel statistics
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=(img_size, img_size),
)
model = dict(
    type='MultiHypothesisSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='SAMImageEncoder', arch='vit_b', img_size=img_size, frozen=True,
                  checkpoint=sam_checkpoint),
    decode_head=dict(
        prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=256, img_size=img_size,
                            patch_size=16, checkpoint=sam_checkpoint),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=256, checkpoint=sam_checkpoint),
    ),
    # num_hypotheses: M at test time (None: the head's own); return_logits: keep the logits.
    test_cfg=dict(num_hypotheses=None, return_logits=False),
)
custom_hooks = [dict(type='EmbeddingCacheHook')]

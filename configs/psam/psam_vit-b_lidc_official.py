# Probabilistic SAM with the public recipe (tbwa233/Probabilistic-SAM) on SAM ViT-B, LIDC-IDRI:
# Adam lr 1e-4, batch 1, 10 epochs; raw [0, 1] images into SAM's frozen encoder (no SAM
# normalisation); prior / posterior nets of the public size (conv 32, conv 64 at the full
# 1024 x 1024 input, global average, linear mean and log-std heads), log-std clamped to [-5, 5],
# latent size 6, beta 10, the z -> prompt MLP randomly initialised; the target is any of the
# 4 readers, the box drawn from it (the central box for an empty one); Dice + BCE on the logits
# upsampled to 1024. Test: M = 16 prior samples (the public code has no test protocol).
# mmsam's variant (our defaults, see README): psam_vit-b_lidc.py.
_base_ = [
    '../_base_/models/psam_vit-b.py',
    '../_base_/datasets/lidc.py',
    '../_base_/schedules/psam_official_schedule.py',
    '../_base_/multi_annotator_runtime.py',
]
data_preprocessor = dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0])
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(net_channels=(32, 64), net_convs_per_block=1, net_downsample=False,
                     net_input_size=None, log_std_range=(-5.0, 5.0), beta=10.0,
                     zero_init_latent_mlp=False, train_target='prompted',
                     loss_resolution='input'),
    test_cfg=dict(num_hypotheses=16))
train_pipeline = [
    dict(type='LoadMultiAnnotatorSample'),
    dict(type='BoxPromptFromAnnotation', readers='any', empty='centre'),
    dict(type='Resize', scale=(1024, 1024), keep_ratio=False),
    dict(type='PackMultiAnnotatorInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
default_hooks = dict(checkpoint=dict(save_best=None))

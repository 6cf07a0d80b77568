# SAMed's prompt-free head on a DConv-adapted encoder, trained on 3D patches of the synthetic
# abdomen and tested by nnU-Net's sliding window: the composition no single-method repository
# has. Same tiny ViT, data, iteration budget and seed as samed_vit-tiny_synthetic-abdomen.py
# (1024 iterations of 8 slices: 2 patches of 4 slices), from scratch on CPU.
_base_ = [
    '../_base_/models/samed_vit-b.py',
    '../_base_/models/sam_vit-tiny_128.py',  # its tiny_vit_arch
    '../_base_/datasets/synthetic_abdomen_3d.py',
    '../_base_/schedules/samed_schedule.py',
    '../_base_/default_runtime.py',
]
num_frames = 4
model = dict(
    _delete_=True,
    type='VolumeSAMSegmentor',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    stem=dict(type='VolumeStem', in_channels=1, channels=(8,), out_channels=3),
    backbone=dict(
        type='SAMImageEncoder', img_size=128, num_frames=num_frames, frozen=False,
        checkpoint=None,
        arch=_base_.tiny_vit_arch,
        adapter=dict(type='DepthBlockAdapter', adapter=dict(type='DConvAdapter'),
                     mlp_scale=0.5)),
    decode_head=dict(
        type='SAMedHead', num_classes=9,
        prompt_encoder=dict(type='SAMPromptEncoder', embed_dim=64, img_size=128, patch_size=8,
                            checkpoint=None),
        mask_decoder=dict(type='SAMMaskDecoder', transformer_dim=64, transformer_mlp_dim=256,
                          transformer_num_heads=4, iou_head_hidden_dim=64, checkpoint=None),
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.2, loss_name='loss_ce'),
            dict(type='MultiClassDiceLoss', loss_weight=0.8, loss_name='loss_dice'),
        ]),
    test_cfg=dict(mode='slide3d', step_size=0.5),
)
# 32 epochs x 32 iterations = 1024 iterations, as the 2D SAMed demo.
train_dataloader = dict(dataset=dict(samples_per_epoch=64))
max_epochs = 32
warmup_iters = 30
optim_wrapper = dict(optimizer=dict(weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / warmup_iters, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=0.9, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=8))

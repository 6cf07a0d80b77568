# MedSAM2's recipe (SAM 2 memory propagation over slices, one organ per box prompt) with a tiny
# Hiera trained from scratch on the synthetic abdomen volumes: the CPU demo (minutes, no
# weights). Training: windows of num_frames consecutive slices whose first slice shows the
# organ, the prompt on that key slice (a GT box, or the GT mask); test: every organ of each
# whole volume prompted once, with its GT box on the middle slice of its z extent, propagated
# forwards and backwards (configs/medsam2/README.md lists what was read in MedSAM2's code).
# Differences from MedSAM2, for CPU speed: a 6-block Hiera of width 16 with a 32-wide neck,
# memory attention of one layer, 128 x 128 slices (the data's own size; MedSAM2 resizes to
# 512), a larger learning rate (nothing pretrained), no augmentation.
_base_ = [
    '../_base_/datasets/synthetic_abdomen_3d.py',
    '../_base_/default_runtime.py',
]
num_frames = 8  # MedSAM2's scratch.num_frames
image_size = 128
sam2_checkpoint = None  # from scratch (a file in SAM 2's layout would load into both parts)
d_model = 32
model = dict(
    type='SAM2VolumeSegmentor',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(
        type='SAM2ImageEncoder', img_size=image_size, frozen=False, checkpoint=sam2_checkpoint,
        arch=dict(embed_dim=16, num_heads=1, stages=(1, 1, 3, 1), global_att_blocks=(3, ),
                  window_spec=(8, 4, 6, 2), window_pos_embed_bkg_spatial_size=(4, 4),
                  d_model=d_model)),
    tracker=dict(checkpoint=sam2_checkpoint, d_model=d_model, mem_dim=16, image_size=image_size,
                 memory_attention=dict(num_layers=1, dim_feedforward=64),
                 memory_encoder=dict(num_fuser_layers=1)),
    test_cfg=dict(memory_bf16=False),
)
prompt_keys = ('key_slice', 'prompt_box', 'prompt_label')
test_prompt_keys = ('prompt_labels', 'key_slices', 'prompt_boxes')
train_pipeline = [
    dict(type='LoadVolume'),  # the generator's intensities are already in [0, 1]
    dict(type='SampleSliceSequence', num_frames=num_frames, key_position='first'),
    dict(type='ResizeSlices', size=image_size),  # a no-op on the 128 x 128 synthetic slices
    dict(type='PackVolumeInputs', meta_keys=(*_base_.meta_keys, *prompt_keys)),
]
test_pipeline = [
    dict(type='LoadVolume', native_label=True),
    dict(type='VolumeOrganPrompts', key_slice='middle'),
    dict(type='ResizeSlices', size=image_size, resize_labels=False),  # scans of other sizes
    dict(type='PackVolumeInputs', meta_keys=(*_base_.meta_keys, *test_prompt_keys)),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# Dice per organ with nnU-Net's convention, NSD (DeepMind's definition) at 2 voxels beside it
# (MedSAM2 reports DSC and NSD), TransUNet's convention logged too.
val_evaluator = dict(type='VolumeDiceHD95Metric', use_spacing=False, convention='nnunet',
                     hd95=False, nsd_tolerance=2.0, also_log_convention='transunet')
test_evaluator = val_evaluator
# 6 epochs x 32 iterations of 2 sequences (1.2-4 s each on one CPU thread): too short for the
# from-scratch tiny model to learn the task (README: Dice ~0.5%); it is the CI-sized demo
max_epochs = 6
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-4, by_epoch=True, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
# validation once, after the last epoch (mmengine always validates then)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=max_epochs))

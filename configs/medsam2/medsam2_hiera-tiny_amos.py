# MedSAM2 (SAM 2.1-tiny fine-tuned by MedSAM2's recipe) on AMOS22 CT: one organ per box prompt,
# propagated through the scan's own slices from a key slice (configs/medsam2/README.md lists
# what was read in bowang-lab/MedSAM2 and what differs).
# Needs data/amos_native: the AMOS22 release converted WITHOUT resampling (MedSAM2 runs on the
# scan's slices, resized to 512 x 512), raw HU kept:
#   python tools/dataset_converters/amos.py SRC data/amos_native
# and SAM 2.1-tiny's official file (github.com/facebookresearch/sam2, checkpoints/
# download_ckpts.sh: sam2.1_hiera_tiny.pt) or MedSAM2's (huggingface.co/wanglab/MedSAM2:
# MedSAM2_latest.pt, the same layout) at `sam2_checkpoint`: both load directly and strictly.
# Not in the recipe here: MedSAM2's augmentation (flip, affine 25 deg / shear 20, colour
# jitter), the layer-wise lr decay 0.9 on the trunk, the mixed data of 455k 3D pairs + 76k
# video frames, correction clicks.
_base_ = [
    '../_base_/datasets/amos_3d.py',
    '../_base_/default_runtime.py',
]
sam2_checkpoint = 'checkpoints/sam2.1_hiera_tiny.pt'
data_root = 'data/amos_native'
image_size = 512  # MedSAM2's sam2.1_hiera_t512.yaml
num_frames = 8  # MedSAM2's scratch.num_frames
ct_window = (-150.0, 250.0)  # medsam2_infer_general.py's abdominal window
model = dict(
    type='SAM2VolumeSegmentor',
    data_preprocessor=dict(type='VolumeDataPreProcessor'),
    backbone=dict(type='SAM2ImageEncoder', arch='hiera_t', img_size=image_size, frozen=False,
                  checkpoint=sam2_checkpoint),
    tracker=dict(image_size=image_size, checkpoint=sam2_checkpoint),
    test_cfg=dict(memory_bf16=True, largest_component=True, native_resampling='sam2'),
)
meta_keys = ('img_path', 'case_id', 'spacing', 'native_shape', 'native_spacing', 'ori_shape',
             'img_shape')
train_pipeline = [
    dict(type='LoadVolume'),
    dict(type='WindowIntensity3D', window=ct_window),
    dict(type='SampleSliceSequence', num_frames=num_frames, key_position='first'),
    dict(type='ResizeSlices', size=image_size),
    dict(type='PackVolumeInputs',
         meta_keys=meta_keys + ('key_slice', 'prompt_box', 'prompt_label')),
]
test_pipeline = [
    dict(type='LoadVolume', native_label=True),
    dict(type='WindowIntensity3D', window=ct_window),
    dict(type='VolumeOrganPrompts', key_slice='middle'),
    dict(type='ResizeSlices', size=image_size, resize_labels=False),
    dict(type='PackVolumeInputs',
         meta_keys=meta_keys + ('prompt_labels', 'key_slices', 'prompt_boxes')),
]
# MedSAM2: 4 sequences per GPU step (scratch.train_video_batch_size); uniform sampling of the
# cases instead of nnU-Net's foreground batch sampler (the windows always show an organ).
train_dataloader = dict(
    batch_size=4, batch_sampler=None,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# Dice per organ (nnU-Net's convention) and NSD at 2 mm (MedSAM2 reports DSC and NSD).
val_evaluator = dict(type='VolumeDiceHD95Metric', convention='nnunet', hd95=False,
                     nsd_tolerance=2.0, also_log_convention='transunet')
test_evaluator = val_evaluator
# MedSAM2's optimiser: AdamW, lr 5e-5 (image encoder 3e-5), weight decay 0.1 (none on
# biases and norms), gradient norm clipped at 0.1, cosine decay to a tenth, bf16 autocast.
max_epochs = 75
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'backbone': dict(lr_mult=0.6)}),
    clip_grad=dict(max_norm=0.1))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min_ratio=0.1, by_epoch=True, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))

# nnU-Net's training augmentation for 3D patches, in its order and with its probabilities: the
# one list the nnU-Net-protocol dataset bases (synapse_3d.py, acdc_3d.py, amos_3d.py) splice
# between their patch crop and PackVolumeInputs:
#   _base_ = ['./nnunet_3d_augmentation.py']
#   train_pipeline = [load, normalise, crop, *_base_.nnunet_augmentation, pack]
# It follows nnU-Net 2.5.1 (the version MaskSAM's official code vendors), whose
# get_training_transforms uses batchgeneratorsv2: the transforms call batchgeneratorsv2 0.2.3
# with nnU-Net's arguments, draw for draw (tests/test_nnunet_augmentation_equivalence.py).
# Every patch of those data sets is anisotropic (max / depth > 3), so nnU-Net's "dummy 2D"
# spatial augmentation applies: rotation and scaling in-plane only (scale U(0.7, 1.4), images
# bilinear, labels by the 0.7 rule), with the crop window nnU-Net plans for it (RandomPatchCrop3D
# rotation_margin=True: 256 -> 301).
nnunet_augmentation = [
    dict(type='RandomSpatial3D', rotate_prob=0.2, rotate_range=(-180., 180.), scale_prob=0.2,
         scale_range=(0.7, 1.4)),
    dict(type='RandomGaussianNoise3D', prob=0.1, std_range=(0., 0.1)),
    dict(type='RandomGaussianBlur3D', prob=0.2, sigma_range=(0.5, 1.), prob_per_channel=0.5),
    dict(type='RandomBrightness3D', prob=0.15, multiplier_range=(0.75, 1.25)),
    dict(type='RandomContrast3D', prob=0.15, contrast_range=(0.75, 1.25), preserve_range=True),
    dict(type='RandomLowResolution3D', prob=0.25, zoom_range=(0.5, 1.), prob_per_channel=0.5,
         axes=(1, 2)),
    dict(type='RandomGamma3D', prob=0.1, gamma_range=(0.7, 1.5), invert_image=True,
         retain_stats=True),
    dict(type='RandomGamma3D', prob=0.3, gamma_range=(0.7, 1.5), invert_image=False,
         retain_stats=True),
    dict(type='RandomMirror3D', prob=0.5, axes=(0, 1, 2)),
]
# nnU-Net's foreground oversampling: the last round(B * 0.33) patches of every batch are
# centred on foreground (at a global batch of 2: exactly the second); the dataset bases set it
# as their train_dataloader's batch_sampler.
nnunet_batch_sampler = dict(type='ForegroundOversampleBatchSampler',
                            oversample_foreground_percent=0.33)

# The official 2D augmentations of SAMed and H-SAM (their RandomGenerator), one branch per
# sample. H-SAM (datasets/dataset_synapse.py): `if r() > 0.55: rotate elif r() > 0.25:
# crop-zoom elif r() > 0.15: elastic`, i.e. rotation 45%, crop 41.25%, elastic 11.69%,
# nothing 2.06%; rotation +-20 degrees, crop 20-80% of each side zoomed back, elastic with
# alpha 2 W, sigma 0.08 W after a random affine of 0.08 W (W the slice width).
hsam_augmentation = dict(
    type='RandomCascade',
    probs=[0.45, 0.75, 0.85],
    transforms=[
        dict(type='RandomRotateScale', prob=1.0, rotate_range=(-20, 20), scale_range=(1, 1)),
        dict(type='RandomCropZoom', prob=1.0, crop_ratio=(0.2, 0.8)),
        dict(type='RandomElasticDeformation', prob=1.0, alpha=2.0, sigma=0.08,
             alpha_affine=0.08, relative_to_width=True),
    ])
# SAMed (datasets/dataset_synapse.py): `if r() > 0.5: rot90 + flip elif r() > 0.5: rotate`:
# 50% one of the 4 reflections of the square (a flip after rot90), 25% a +-20 degree
# rotation, 25% nothing.
samed_augmentation = dict(
    type='RandomCascade',
    probs=[0.5, 0.5],
    transforms=[
        dict(type='RandomRot90Flip', prob=1.0),
        dict(type='RandomRotateScale', prob=1.0, rotate_range=(-20, 20), scale_range=(1, 1)),
    ])

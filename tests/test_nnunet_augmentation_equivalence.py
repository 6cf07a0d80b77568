"""nnU-Net 2.5.1's training patches and augmentation, compared with the nnunetv2 package.

Issue 27 items 7-9: the enlarged crop window (nnunetv2's ``get_patch_size``), the crop and its
per-batch foreground oversampling (nnunetv2's ``nnUNetDataLoader3D``, run on the same arrays)
and every augmentation of ``get_training_transforms`` (batchgeneratorsv2 with nnU-Net's
arguments), with the same seeds: equal crops, labels equal, images within 1e-6.
nnU-Net's trainer module needs ``cc3d``, so its rules (dummy 2D, rotation range, the list of
transforms and their arguments) are restated here from nnunetv2 2.5.1's source.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.pseudo2d import (Convert2DTo3DTransform,
                                                         Convert3DTo2DTransform)
from batchgeneratorsv2.transforms.utils.random import RandomTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTansform
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.runner import Runner
from nnunetv2.configuration import ANISO_THRESHOLD
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
from nnunetv2.training.dataloading.base_data_loader import nnUNetDataLoaderBase
from nnunetv2.training.dataloading.data_loader_3d import nnUNetDataLoader3D

import mmsam.datasets.foreground_oversample_batch_sampler as sampler_module
from mmsam.datasets import ForegroundOversampleBatchSampler
from mmsam.datasets.transforms import RandomPatchCrop3D
from mmsam.datasets.transforms.nnunet_patch_rules import (nnunet_dummy_2d,
                                                          nnunet_initial_patch_size,
                                                          nnunet_rotation_range)
from mmsam.datasets.transforms.random_spatial_3d import outside_volume_mask
from mmsam.registry import TRANSFORMS

from mmsam.datasets.io.data_root import write_meta, write_split
from mmsam.datasets.io.npz import save_volume

AUGMENTATION_BASE = 'configs/_base_/datasets/nnunet_3d_augmentation.py'
NUM_CLASSES = 4


def nnunet_patch_configuration(patch_size):
    """nnUNetTrainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size, 3D branch."""
    dummy_2d = max(patch_size) / patch_size[0] > ANISO_THRESHOLD
    degrees = 180. if dummy_2d else 30.
    rotation = (-degrees / 360 * 2. * np.pi, degrees / 360 * 2. * np.pi)
    initial = get_patch_size(patch_size, rotation, rotation, rotation, (0.85, 1.25))
    if dummy_2d:
        initial[0] = patch_size[0]
    return dummy_2d, rotation, tuple(int(v) for v in initial)


def nnunet_training_transforms(patch_size):
    """nnUNetTrainer.get_training_transforms (2.5.1) for a 3D patch without deep supervision,
    masking, cascade or regions."""
    dummy_2d, rotation, _ = nnunet_patch_configuration(patch_size)
    spatial = SpatialTransform(
        patch_size[1:] if dummy_2d else patch_size, patch_center_dist_from_border=0,
        random_crop=False, p_elastic_deform=0, p_rotation=0.2, rotation=rotation,
        p_scaling=0.2, scaling=(0.7, 1.4), p_synchronize_scaling_across_axes=1,
        bg_style_seg_sampling=False)
    transforms = [Convert3DTo2DTransform(), spatial, Convert2DTo3DTransform()] if dummy_2d \
        else [spatial]
    transforms += [
        RandomTransform(GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1,
                                               synchronize_channels=True), 0.1),
        # nnU-Net sets benchmark=True (FFT or direct convolution by timing: ~2e-6 apart);
        # mmsam's default is the direct one
        RandomTransform(GaussianBlurTransform(blur_sigma=(0.5, 1.), synchronize_channels=False,
                                              synchronize_axes=False, p_per_channel=0.5,
                                              benchmark=False), 0.2),
        RandomTransform(MultiplicativeBrightnessTransform(
            multiplier_range=BGContrast((0.75, 1.25)), synchronize_channels=False,
            p_per_channel=1), 0.15),
        RandomTransform(ContrastTransform(contrast_range=BGContrast((0.75, 1.25)),
                                          preserve_range=True, synchronize_channels=False,
                                          p_per_channel=1), 0.15),
        RandomTransform(SimulateLowResolutionTransform(
            scale=(0.5, 1), synchronize_channels=False, synchronize_axes=True,
            ignore_axes=(0, ) if dummy_2d else None, allowed_channels=None,
            p_per_channel=0.5), 0.25),
        RandomTransform(GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=1,
                                       synchronize_channels=False, p_per_channel=1,
                                       p_retain_stats=1), 0.1),
        RandomTransform(GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=0,
                                       synchronize_channels=False, p_per_channel=1,
                                       p_retain_stats=1), 0.3),
        MirrorTransform(allowed_axes=(0, 1, 2)),
        RemoveLabelTansform(-1, 0),
    ]
    return transforms


def mmsam_augmentation(**overrides):
    """The config base's augmentation list, built (``overrides``: per type, extra args)."""
    cfgs = Config.fromfile(AUGMENTATION_BASE).nnunet_augmentation
    return [TRANSFORMS.build(dict(cfg, **overrides.get(cfg['type'], {}))) for cfg in cfgs]


def seed_all(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)


def blocky_case(shape, seed, channels=2):
    """An image (C, D, H, W) and a label of 4 classes in blocks (class 3 may be absent)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(channels, ) + shape).astype(np.float32)
    coarse = rng.integers(0, NUM_CLASSES - (seed % 2), (shape[0], -(-shape[1] // 5),
                                                        -(-shape[2] // 5)))
    label = coarse.repeat(5, 1).repeat(5, 2)[:, :shape[1], :shape[2]].astype(np.uint8)
    label[label == 1] *= rng.random(label[label == 1].shape) < 0.3  # sparse class 1
    return image, label


# ---- item 7: the crop window for rotation ---------------------------------------------------

def test_initial_patch_size_equals_nnunet_get_patch_size():
    rng = np.random.default_rng(0)
    sizes = [(26, 256, 256), (4, 256, 256), (64, 512, 512), (64, 128, 160), (96, 96, 96)]
    sizes += [tuple(int(v) for v in rng.integers(2, 400, 3)) for _ in range(500)]
    for size in sizes:
        dummy_2d, rotation, initial = nnunet_patch_configuration(size)
        assert nnunet_dummy_2d(size) == dummy_2d
        assert nnunet_rotation_range(size)[1] / 360 * 2. * np.pi == rotation[1]
        assert nnunet_initial_patch_size(size) == initial, size
        assert RandomPatchCrop3D(size, rotation_margin=True).window == initial
    # any rotation bound, not only nnU-Net's two
    for degrees in (5., 15., 45., 60., 90., 135.):
        radians = degrees / 360 * 2. * np.pi
        for size in sizes[5:105]:
            expected = get_patch_size(size, radians, radians, radians, (0.85, 1.25))
            if nnunet_dummy_2d(size):
                expected[0] = size[0]
            assert nnunet_initial_patch_size(size, degrees) == tuple(expected), (size, degrees)
    # MaskSAM's Synapse patch: 256 -> 301, the crop reaches at most 23 voxels outside
    crop = RandomPatchCrop3D((26, 256, 256), rotation_margin=True)
    assert crop.window == (26, 301, 301)
    lows, highs = crop.start_bounds((100, 512, 512))
    assert lows == [0, -23, -23] and highs == [74, 512 + 23 - 301, 512 + 23 - 301]


# ---- item 9 and the crop: nnU-Net's data loader on the same arrays --------------------------

class CaseStore:
    """What nnUNetDataLoader3D reads: keys() and load_case() -> (data, seg, properties)."""

    def __init__(self, cases):
        self.cases = cases

    def keys(self):
        return list(self.cases)

    def load_case(self, key):
        image, label = self.cases[key]
        # every voxel as a class location (nnU-Net samples a subset in preprocessing)
        locations = {c: np.argwhere(label[None] == c) for c in range(1, NUM_CLASSES)}
        return image, label[None].astype(np.int16), dict(class_locations=locations)


def nnunet_loader(cases, batch_size, window, patch, percent, transforms=None):
    labels = SimpleNamespace(all_labels=list(range(NUM_CLASSES)), has_ignore_label=False)
    return nnUNetDataLoader3D(CaseStore(cases), batch_size, window, patch, labels,
                              oversample_foreground_percent=percent, transforms=transforms)


def mmsam_batch(cases, batch_size, crop, percent, augmentation=()):
    """mmsam's crops (and augmentation) of one batch, with the loader's case draw first."""
    force = ForegroundOversampleBatchSampler(range(batch_size), batch_size, percent).force_fg
    keys = np.random.choice(list(cases), batch_size, replace=True)  # the loader's get_indices
    batch = []
    for key, force_fg in zip(keys, force):
        image, label = cases[key]
        results = dict(img=image.copy(), gt_seg_map=label.copy(), seg_fields=['gt_seg_map'],
                       force_fg=force_fg, case=key)
        results = crop(results)
        results['outside'] = outside_volume_mask(results, results['img'].shape[-3:])
        for transform in augmentation:
            results = transform(results)
        batch.append(results)
    return batch


@pytest.mark.parametrize('percent', [0.33, 0.5, 1.])
@pytest.mark.parametrize('margin', [False, True])
def test_crop_and_oversampling_equal_nnunet_data_loader(percent, margin):
    shapes = [(6, 40, 44), (3, 20, 25), (8, 70, 31)]  # the second is smaller than the patch
    cases = {f'case{i}': blocky_case(shape, i) for i, shape in enumerate(shapes)}
    patch = (4, 24, 24)
    crop = RandomPatchCrop3D(patch, rotation_margin=margin)
    loader = nnunet_loader(cases, 3, crop.window, patch, percent)
    for seed in range(12):
        seed_all(seed)
        expected = loader.generate_train_batch()
        seed_all(seed)
        batch = mmsam_batch(cases, 3, crop, percent)
        assert list(expected['keys']) == [r['case'] for r in batch]
        for j, results in enumerate(batch):
            np.testing.assert_array_equal(results['img'], expected['data'][j])
            seg = expected['target'][j][0]
            np.testing.assert_array_equal(results['gt_seg_map'], np.maximum(seg, 0))
            # the voxels nnU-Net padded with -1 are those RandomSpatial3D treats as outside
            outside = results['outside']
            np.testing.assert_array_equal(False if outside is None else outside, seg == -1)


def test_forced_patches_per_batch_equal_nnunet_rule():
    for batch_size in range(1, 17):
        for percent in (0., 0.2, 0.33, 0.5, 0.66, 1.):
            nnunet = SimpleNamespace(batch_size=batch_size, oversample_foreground_percent=percent)
            expected = [nnUNetDataLoaderBase._oversample_last_XX_percent(nnunet, j)
                        for j in range(batch_size)]
            force = ForegroundOversampleBatchSampler(range(5), batch_size, percent).force_fg
            assert force == expected
            assert sum(force) == batch_size - round(batch_size * (1 - percent))
    # MaskSAM's global batch of 2: exactly one, the second
    assert ForegroundOversampleBatchSampler(range(4), 2).force_fg == [False, True]
    batches = list(ForegroundOversampleBatchSampler(range(5), 2))
    assert batches == [[(0, False), (1, True)], [(2, False), (3, True)], [(4, False)]]


def nnunet_ddp_rank_rule(batch_size, world_size, rank, percent):
    """nnUNetTrainer._set_batch_size_and_oversample: the rank's oversample percent, then the
    loader's rule on the rank's own batch."""
    global_batch = batch_size * world_size
    oversample = [not i < round(global_batch * (1 - percent)) for i in range(global_batch)]
    low, high = rank * batch_size, (rank + 1) * batch_size
    if high / global_batch < (1 - percent):
        rank_percent = 0.
    elif low / global_batch > (1 - percent):
        rank_percent = 1.
    else:
        rank_percent = sum(oversample[low:high]) / batch_size
    return [not j < round(batch_size * (1 - rank_percent)) for j in range(batch_size)]


def test_forced_patches_under_ddp_equal_nnunet_rank_split(monkeypatch):
    for world_size in (2, 3, 4):
        for batch_size in (1, 2, 3, 5):
            for percent in (0.2, 0.33, 0.5):
                total = 0
                for rank in range(world_size):
                    monkeypatch.setattr(sampler_module, 'get_dist_info',
                                        lambda r=rank: (r, world_size))
                    force = ForegroundOversampleBatchSampler(range(8), batch_size,
                                                             percent).force_fg
                    assert force == nnunet_ddp_rank_rule(batch_size, world_size, rank, percent)
                    total += sum(force)
                global_batch = batch_size * world_size
                assert total == global_batch - round(global_batch * (1 - percent))


def test_runner_dataloader_forces_the_last_patch_of_each_batch(tmp_path):
    """Under mmengine's Runner.build_dataloader (DefaultSampler, batch_size 2)."""
    root = str(tmp_path)
    label = np.zeros((8, 64, 64), np.uint8)
    label[3:5, 40:42, 10:12] = 1  # 8 voxels: a random 2 x 8 x 8 patch rarely holds them
    save_volume(f'{root}/train_volumes/case0.npz', np.zeros(label.shape, np.float32), label)
    write_split(root, 'train_volumes', ['case0'])
    write_meta(root, dict(classes=['background', 'spot'], intensity='unit'))
    pipeline = [dict(type='LoadVolume'), dict(type='RandomPatchCrop3D', patch_size=(2, 8, 8)),
                dict(type='PackVolumeInputs')]
    loader = Runner.build_dataloader(dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
        batch_sampler=dict(type='ForegroundOversampleBatchSampler'),
        dataset=dict(type='VolumePatchDataset', data_root=root, samples_per_epoch=60,
                     pipeline=pipeline)), seed=0)
    hits = np.array([[bool(s.gt_sem_seg.data.any()) for s in batch['data_samples']]
                     for batch in loader])
    assert hits.shape == (30, 2)
    assert hits[:, 1].all()  # forced: always foreground
    assert hits[:, 0].sum() <= 3  # random: the spot is in ~1% of the positions


# ---- item 8: the augmentation, transform by transform and as a pipeline ---------------------

REFERENCE_STEPS = {  # mmsam config entry -> its slice of nnunet_training_transforms
    'RandomSpatial3D': slice(0, 3), 'RandomGaussianNoise3D': slice(3, 4),
    'RandomGaussianBlur3D': slice(4, 5), 'RandomBrightness3D': slice(5, 6),
    'RandomContrast3D': slice(6, 7), 'RandomLowResolution3D': slice(7, 8),
}


def compare(results, data, atol=1e-6):
    np.testing.assert_allclose(results['img'], data['image'].numpy(), rtol=0, atol=atol)
    if 'segmentation' in data:
        np.testing.assert_array_equal(results['gt_seg_map'], data['segmentation'][0].numpy())


@pytest.mark.parametrize('index', range(9))
def test_each_augmentation_equals_batchgeneratorsv2_seeded(index):
    patch = (6, 34, 34)
    window = (6, 40, 40)
    steps = nnunet_training_transforms(patch)
    mm_steps = mmsam_augmentation()
    name = type(mm_steps[index]).__name__
    if name == 'RandomSpatial3D':
        reference = steps[0:3] + [steps[-1]]
    elif name == 'RandomGamma3D':
        reference = [steps[8 + index - 6]]
    elif name == 'RandomMirror3D':
        reference = [steps[10]]
    else:
        reference = steps[REFERENCE_STEPS[name]]
    reference = ComposeTransforms(reference)
    fired = 0
    for seed in range(40):
        image, label = blocky_case(window, seed)
        bbox, source = ((0, 6), (-3, 37), (5, 45)), (6, 50, 45)  # rows 0-2 were padding
        ref_label = label.astype(np.int16)
        if name == 'RandomSpatial3D':  # nnU-Net's loader padded these rows with -1
            ref_label[:, :3] = -1
        seed_all(seed)
        results = mm_steps[index](dict(img=image.copy(), gt_seg_map=label.copy(),
                                       seg_fields=['gt_seg_map'], patch_size=patch,
                                       crop_bbox=bbox, crop_source_shape=source))
        seed_all(seed)
        data = reference(image=torch.from_numpy(image.copy()),
                         segmentation=torch.from_numpy(ref_label[None].copy()))
        compare(results, data)
        unchanged = image[:, :, 3:37, 3:37] if name == 'RandomSpatial3D' else image
        fired += not np.array_equal(results['img'], unchanged)
    assert fired >= 2, f'{name} changed nothing in 40 seeded draws'


@pytest.mark.parametrize('forced', [False, True])
def test_augmentation_pipeline_equals_nnunet_loader_with_transforms(forced):
    """Crop, augmentation, -1 -> 0: mmsam's pipeline against nnUNetDataLoader3D (batch 1)."""
    patch = (4, 28, 28)
    crop = RandomPatchCrop3D(patch, rotation_margin=True)
    assert crop.window == (4, 32, 32)
    cases = {f'case{i}': blocky_case(shape, i) for i, shape in
             enumerate([(6, 40, 44), (5, 30, 50)])}
    # apply everything that may fire, so that every step's draws are compared
    certain = dict(RandomSpatial3D=dict(rotate_prob=0.9, scale_prob=0.9))
    steps = nnunet_training_transforms(patch)
    steps[1].p_rotation = steps[1].p_scaling = 0.9
    for step in steps:
        if isinstance(step, RandomTransform):
            step.apply_probability = 0.9
    mm_steps = mmsam_augmentation(**certain)
    for t in mm_steps:
        if hasattr(t, 'bg_transform'):
            t.bg_transform.apply_probability = 0.9
    percent = 1. if forced else 0.
    loader = nnunet_loader(cases, 1, crop.window, patch, percent, ComposeTransforms(steps))
    for seed in range(15):
        seed_all(seed)
        expected = loader.generate_train_batch()
        seed_all(seed)
        (results, ) = mmsam_batch(cases, 1, crop, percent, mm_steps)
        compare(results, dict(image=expected['data'][0], segmentation=expected['target'][0]))
        assert results['img'].shape == (2, ) + patch


def test_pipeline_from_config_runs_nnunet_augmentation():
    """The config base builds to the transforms compared above, in nnU-Net's order."""
    names = [type(t).__name__ for t in Compose(
        Config.fromfile(AUGMENTATION_BASE).nnunet_augmentation).transforms]
    assert names == ['RandomSpatial3D', 'RandomGaussianNoise3D', 'RandomGaussianBlur3D',
                     'RandomBrightness3D', 'RandomContrast3D', 'RandomLowResolution3D',
                     'RandomGamma3D', 'RandomGamma3D', 'RandomMirror3D']

"""mmsam's 3D path against the nnunetv2 package (2.5.1, as MaskSAM's official code vendors).

Each row calls mmsam's component and nnU-Net's own function on the same random and anisotropic
inputs and asserts equality (exact for integers and labels, <= 1e-6 for floats). nnU-Net's
trainer is not imported (it needs cc3d); its inference and preprocessing modules are.
"""
import functools

import numpy as np
import pytest
import torch
# a hard import: nnunetv2 is pinned in requirements/runtime.txt, so CI fails rather than skips
from nnunetv2.inference import sliding_window_prediction

from mmsam.models.utils.native_grid_resampling import (labels_on_native_grid,
                                                       resample_scores_to_native)
from mmsam.models.utils.sliding_window_3d import (compute_window_steps, gaussian_importance_map,
                                                  sliding_window_inference_3d)


# ----------------------------------------------------------------------------------------------
# Sliding window: steps, Gaussian, padding + mirroring + blending of logits (issue 27, item 2)
# ----------------------------------------------------------------------------------------------

def test_sliding_window_steps_equal_nnunet():
    rng = np.random.default_rng(0)
    cases = [((110, ), (64, )), ((64, 65, 200), (64, 64, 64))]
    cases += [(tuple(int(p + rng.integers(0, 3 * p)) for p in patch), patch)
              for patch in [tuple(int(v) for v in rng.integers(1, 40, size=3))
                            for _ in range(300)]]
    for size, patch in cases:
        for step in (0.5, 0.25, 1.0, 0.33):
            assert compute_window_steps(size, patch, step) == \
                sliding_window_prediction.compute_steps_for_sliding_window(size, patch, step)


@pytest.mark.parametrize('patch', [(4, 16, 16), (5, 24, 40), (2, 7, 9), (8, 128, 128)])
@pytest.mark.parametrize('sigma_scale', [1 / 8, 0.25])
def test_gaussian_map_equals_nnunet(patch, sigma_scale):
    ours = gaussian_importance_map(patch, sigma_scale)
    theirs = sliding_window_prediction.compute_gaussian(
        patch, sigma_scale, value_scaling_factor=1, dtype=torch.float64,
        device=torch.device('cpu'))
    assert ours.dtype == torch.float32 and ours.shape == patch
    torch.testing.assert_close(ours.double(), theirs, atol=1e-7, rtol=0)
    ours[0, 0, 0] = -1  # a copy: nnU-Net's cached map is not touched
    assert gaussian_importance_map(patch, sigma_scale)[0, 0, 0] > 0


class _LogitNet(torch.nn.Module):
    """A random logit model without symmetries (so every flip changes its output)."""

    def __init__(self, classes=3):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv3d(1, classes, (3, 5, 3), padding=(1, 2, 1))
        self.ramp = torch.nn.Parameter(torch.randn(classes, 1, 1, 1) * 0.3)

    def forward(self, x):
        depth, height, width = x.shape[-3:]
        grid = torch.linspace(-1, 1, width).view(1, 1, 1, width) * \
            torch.linspace(0, 2, height).view(1, height, 1) + \
            torch.linspace(1, -1, depth).view(depth, 1, 1)
        return self.conv(x) + self.ramp * grid


def nnunet_sliding_window(volume, network, patch, mirror_axes, step=0.5, float32_sums=False):
    """nnUNetPredictor.predict_sliding_window_return_logits on the CPU with ``network``.

    ``float32_sums``: nnU-Net's own code with its float16 Gaussian and running sums made
    float32 (mmsam's dtype), so that the rest of its arithmetic is compared at 1e-6. (With
    float16 the Gaussian's tails, down to 1e-4 of its peak, round coarsely, and window-edge
    voxels move by up to 0.5 logits: a storage choice for GPU memory, not a rule.)
    """
    from nnunetv2.inference import predict_from_raw_data
    predictor = predict_from_raw_data.nnUNetPredictor(
        tile_step_size=step, use_gaussian=True, use_mirroring=bool(mirror_axes),
        perform_everything_on_device=False, device=torch.device('cpu'), verbose=False,
        allow_tqdm=False)
    predictor.network = network
    predictor.allowed_mirroring_axes = tuple(mirror_axes)
    predictor.configuration_manager = type('Config', (), dict(patch_size=list(patch)))()
    predictor.label_manager = type('Labels', (), dict(num_segmentation_heads=3))()
    if not float32_sums:
        return predictor.predict_sliding_window_return_logits(volume).float()
    gaussian32 = functools.partial(sliding_window_prediction.compute_gaussian,
                                   dtype=torch.float32)
    with pytest.MonkeyPatch.context() as patcher:
        patcher.setattr(torch, 'half', torch.float32)
        patcher.setattr(predict_from_raw_data, 'compute_gaussian', gaussian32)
        return predictor.predict_sliding_window_return_logits(volume)


@pytest.mark.parametrize('shape,patch,mirror', [
    ((1, 9, 37, 45), (4, 16, 24), (0, 1, 2)),   # anisotropic windows, 8-flip mirroring
    ((1, 3, 21, 50), (4, 16, 16), (1, 2)),      # depth smaller than the window: padded
    ((1, 12, 16, 16), (4, 16, 16), ()),         # no mirroring, one window per slice plane
])
def test_sliding_window_on_a_logit_model_equals_nnunet(shape, patch, mirror):
    torch.manual_seed(0)
    volume = torch.randn(shape)
    network = _LogitNet().eval()
    with torch.no_grad():
        ours = sliding_window_inference_3d(volume, network, patch, 0.5, mirror_axes=mirror,
                                           window_batch=2)
        theirs32 = nnunet_sliding_window(volume, network, patch, mirror, float32_sums=True)
    assert ours.shape == (3, ) + shape[1:] and theirs32.dtype == torch.float32
    torch.testing.assert_close(ours, theirs32, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------------------
# Prediction to the native grid (issue 27, item 1): nnU-Net's export path
# ----------------------------------------------------------------------------------------------

def nnunet_export_labels(logits, model_spacing, native_shape, native_spacing):
    """nnU-Net's convert_predicted_logits_to_segmentation_with_correct_shape with the default
    plans' probability resampling, no cropping and no transposition."""
    from nnunetv2.inference.export_prediction import \
        convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.utilities.label_handling.label_handling import LabelManager
    from nnunetv2.utilities.plans_handling.plans_handler import (ConfigurationManager,
                                                                 PlansManager)
    plans = PlansManager(dict(transpose_forward=[0, 1, 2], transpose_backward=[0, 1, 2]))
    config = ConfigurationManager(dict(
        architecture={}, spacing=list(model_spacing),
        resampling_fn_probabilities='resample_data_or_seg_to_shape',
        resampling_fn_probabilities_kwargs=dict(is_seg=False, order=1, order_z=0,
                                                force_separate_z=None)))
    labels = LabelManager({'background': 0, **{f'class{k}': k for k in range(1, len(logits))}},
                          None)
    properties = dict(spacing=list(native_spacing),
                      shape_after_cropping_and_before_resampling=tuple(native_shape),
                      shape_before_cropping=tuple(native_shape),
                      bbox_used_for_cropping=[[0, s] for s in native_shape])
    return convert_predicted_logits_to_segmentation_with_correct_shape(
        logits.clone(), plans, config, labels, properties, num_threads_torch=1)


def nnunet_resampled(scores, model_spacing, native_shape, native_spacing):
    from nnunetv2.preprocessing.resampling.default_resampling import \
        resample_data_or_seg_to_shape
    return resample_data_or_seg_to_shape(scores.double().numpy(), native_shape, model_spacing,
                                         native_spacing, is_seg=False, order=1, order_z=0,
                                         force_separate_z=None)


# (native spacing, native shape, model-grid spacing): anisotropic native grids (separate z,
# nearest along z) and an isotropic pair (order 1 in 3D)
NATIVE_GRIDS = [
    ((5.0, 0.8, 0.8), (7, 40, 36), (1.6, 0.8, 0.8)),   # the acceptance spacing, z upsampled
    ((5.0, 0.8, 0.8), (6, 33, 30), (5.0, 1.0, 1.2)),   # only in-plane resampling
    ((3.5, 0.7, 0.9), (9, 28, 31), (1.0, 1.0, 1.0)),   # anisotropic native, isotropic model
    ((1.2, 1.0, 1.1), (10, 19, 23), (1.5, 1.5, 1.5)),  # nearly isotropic: order 1 in 3D
]


@pytest.mark.parametrize('native_spacing,native_shape,model_spacing', NATIVE_GRIDS)
def test_prediction_to_the_native_grid_equals_nnunet_export(native_spacing, native_shape,
                                                             model_spacing):
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape
    shape = tuple(int(s) for s in compute_new_shape(native_shape, native_spacing, model_spacing))
    torch.manual_seed(0)
    logits = torch.randn((4, ) + shape) * 3
    resampled = resample_scores_to_native(logits, native_shape, model_spacing, native_spacing)
    theirs = nnunet_resampled(logits, model_spacing, native_shape, native_spacing)
    assert resampled.shape == (4, ) + native_shape
    np.testing.assert_allclose(resampled.numpy(), theirs, atol=1e-6, rtol=0)
    labels = labels_on_native_grid(logits, native_shape, model_spacing, native_spacing)
    np.testing.assert_array_equal(labels.numpy(), nnunet_export_labels(
        logits, model_spacing, native_shape, native_spacing))
    # the native spacing derived from the shapes (files without native_spacing) decides alike
    np.testing.assert_array_equal(labels.numpy(),
                                  labels_on_native_grid(logits, native_shape, model_spacing))


def test_trilinear_option_is_the_former_resize_and_differs_on_anisotropic_grids():
    native_spacing, native_shape, model_spacing = NATIVE_GRIDS[0]
    torch.manual_seed(0)
    logits = torch.randn(4, 22, 40, 36) * 3
    trilinear = resample_scores_to_native(logits.softmax(0), native_shape, model_spacing,
                                          native_spacing, mode='trilinear')
    reference = torch.nn.functional.interpolate(logits.softmax(0)[None], size=native_shape,
                                                mode='trilinear', align_corners=False)[0]
    torch.testing.assert_close(trilinear, reference)
    nnunet = labels_on_native_grid(logits, native_shape, model_spacing, native_spacing)
    assert (trilinear.argmax(0) != nnunet).float().mean() > 0.01


# ----------------------------------------------------------------------------------------------
# Converters' preprocessing (issue 27, items 3-6): resampling, order, target spacing, CT stats
# ----------------------------------------------------------------------------------------------

def nnunet_preprocess(image, label, spacing, target_spacing, ct_stats=None):
    """nnU-Net's DefaultPreprocessor.run_case_npy on one single-channel case (no transposition;
    images without zeros, so crop_to_nonzero keeps the whole volume): CTNormalization with
    ``ct_stats``, else NoNormalization; the default plans' resampling functions."""
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import (ConfigurationManager,
                                                                 PlansManager)
    assert np.all(image != 0)
    resampling = 'resample_data_or_seg_to_shape'
    config = ConfigurationManager(dict(
        architecture={}, spacing=list(target_spacing),
        normalization_schemes=['CTNormalization' if ct_stats else 'NoNormalization'],
        use_mask_for_norm=[False],
        resampling_fn_data=resampling, resampling_fn_seg=resampling,
        resampling_fn_data_kwargs=dict(is_seg=False, order=3, order_z=0, force_separate_z=None),
        resampling_fn_seg_kwargs=dict(is_seg=True, order=1, order_z=0, force_separate_z=None)))
    plans = PlansManager(dict(transpose_forward=[0, 1, 2], transpose_backward=[0, 1, 2],
                              foreground_intensity_properties_per_channel={'0': ct_stats or {}}))
    labels = {'background': 0, **{f'class{k}': k for k in range(1, int(label.max()) + 1)}}
    data, seg = DefaultPreprocessor(verbose=False).run_case_npy(
        image[None].astype(np.float32), label[None].astype(np.int8),
        dict(spacing=list(spacing)), plans, config,
        dict(labels=labels, channel_names={'0': 'CT' if ct_stats else 'noNorm'}))
    return data[0], seg[0]


def ct_like_case(shape, seed):
    """A CT-like case: smooth organs in HU with sharp edges, labels from thresholds, no zeros."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=shape), 1.2)
    field = field / field.std()
    label = np.digitize(field, [0.3, 1.0, 1.6]).astype(np.uint8)
    image = np.choose(label, [-900.0, 40.0, 180.0, 1200.0]) + rng.normal(0, 25, size=shape)
    image[image == 0] = 1.0
    return image.astype(np.float32), label


# (spacing, target spacing): anisotropic source (separate z), anisotropic target only,
# isotropic (3D order 3 / order 1), down- and upsampling
PREPROCESSING_GRIDS = [((5.0, 0.8, 0.8), (2.0, 0.8, 0.8)),
                       ((5.0, 0.8, 0.8), (5.0, 1.1, 0.6)),
                       ((1.0, 1.0, 1.0), (4.0, 1.0, 1.0)),
                       ((1.5, 1.2, 0.9), (1.0, 1.0, 1.0))]


@pytest.mark.parametrize('spacing,target', PREPROCESSING_GRIDS)
def test_image_and_label_resampling_equal_nnunet_preprocessor(spacing, target):
    from mmsam.datasets.converters.nnunet_preprocessing import resample_volume
    rng = np.random.default_rng(0)
    for image, label in [ct_like_case((7, 26, 23), 1),
                         (rng.uniform(1, 2, (6, 17, 19)).astype(np.float32),
                          rng.integers(0, 5, (6, 17, 19)).astype(np.uint8))]:
        ours_image, ours_label = resample_volume(image, label, spacing, target)
        theirs_image, theirs_label = nnunet_preprocess(image, label, spacing, target)
        assert ours_image.shape == theirs_image.shape != image.shape
        np.testing.assert_allclose(ours_image, theirs_image, atol=1e-6 * np.abs(image).max(),
                                   rtol=0)
        np.testing.assert_array_equal(ours_label, theirs_label)
        # skimage's resize clips to the input range (no overshoot at the sharp edges)
        assert image.min() <= ours_image.min() and ours_image.max() <= image.max()


@pytest.mark.parametrize('spacing,target', [((5.0, 0.8, 0.8), (2.0, 0.6, 0.7)),
                                            *PREPROCESSING_GRIDS[1::2]])
def test_ct_preprocessing_order_equals_nnunet(spacing, target):
    # nnU-Net clips + z-scores, then resamples; mmsam clips before resampling (clip_range) and
    # z-scores at load time (NormalizeIntensity3D): the same volume, to float32 rounding.
    from mmsam.datasets.converters.nnunet_preprocessing import (ct_clip_range,
                                                                foreground_stats,
                                                                resample_volume,
                                                                sample_foreground)
    from mmsam.datasets.transforms import NormalizeIntensity3D
    image, label = ct_like_case((7, 26, 23), 2)
    stats = foreground_stats([sample_foreground(image, label, 5000)])
    stored, stored_label = resample_volume(image, label, spacing, target, ct_clip_range(stats))
    ours = NormalizeIntensity3D(mode='ct').transform(dict(img=stored,
                                                          intensity_properties=stats))['img']
    theirs, theirs_label = nnunet_preprocess(image, label, spacing, target, ct_stats=stats)
    np.testing.assert_allclose(ours, theirs, atol=1e-6 * max(1, np.abs(theirs).max()), rtol=0)
    np.testing.assert_array_equal(stored_label, theirs_label)
    # the former order (resample HU, then clip and z-score) differs at the sharp edges (where
    # a spline interpolates: in-plane or in 3D; nearest along z alone commutes with the clip)
    former = NormalizeIntensity3D(mode='ct').transform(dict(
        img=resample_volume(image, label, spacing, target)[0], intensity_properties=stats))['img']
    assert np.abs(former - theirs).max() > 1e-2


def test_target_spacing_equals_nnunet_planner():
    from nnunetv2.configuration import ANISO_THRESHOLD
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import \
        ExperimentPlanner

    from mmsam.datasets.converters.nnunet_preprocessing import nnunet_target_spacing
    rng = np.random.default_rng(0)
    planner = object.__new__(ExperimentPlanner)  # the rule only, without a dataset folder
    planner.overwrite_target_spacing, planner.anisotropy_threshold = None, ANISO_THRESHOLD
    for trial in range(150):
        n = int(rng.integers(1, 12))
        spacings = np.column_stack([rng.choice([0.5, 1, 2.5, 3, 5, 6, 10], n),
                                    rng.uniform(0.4, 1.6, n), rng.uniform(0.4, 1.6, n)])
        shapes = np.column_stack([rng.integers(5, 200, n), rng.integers(40, 512, n),
                                  rng.integers(40, 512, n)])
        if trial % 3 == 0:  # the coarse axis elsewhere
            spacings, shapes = spacings[:, ::-1], shapes[:, ::-1]
        planner.dataset_fingerprint = dict(spacings=list(spacings),
                                           shapes_after_crop=list(shapes))
        theirs = planner.determine_fullres_target_spacing()
        np.testing.assert_allclose(nnunet_target_spacing(spacings, shapes), theirs,
                                   rtol=0, atol=1e-12)


def test_ct_foreground_statistics_equal_nnunet_fingerprint():
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import \
        DatasetFingerprintExtractor

    from mmsam.datasets.converters.nnunet_preprocessing import (foreground_stats,
                                                                sample_foreground)
    cases = [ct_like_case(shape, seed) for seed, shape in
             enumerate([(5, 20, 20), (9, 31, 27), (3, 12, 40), (6, 6, 6)])]
    budget = 20000  # nnU-Net: 10e7 // number of training cases
    ours = foreground_stats([sample_foreground(image, label, budget) for image, label in cases])
    draws = np.concatenate([DatasetFingerprintExtractor.collect_foreground_intensities(
        label[None], image[None], num_samples=budget)[0][0] for image, label in cases])
    low, high = np.percentile(draws, (0.5, 99.5))
    theirs = dict(mean=float(np.mean(draws)), std=float(np.std(draws)),
                  percentile_00_5=float(low), percentile_99_5=float(high))
    assert ours == theirs  # the same draws and the same float32 arithmetic: exact
    # each case weighs the same: the former all-voxel pooling differs
    pooled = np.concatenate([image[label > 0] for image, label in cases]).astype(np.float64)
    assert abs(pooled.mean() - ours['mean']) > 0.1


def test_converted_ct_case_equals_nnunet_preprocessor_after_load_normalisation(tmp_path,
                                                                                monkeypatch):
    # A CT conversion (--intensity hu, a target spacing) takes its foreground statistics from
    # the native training cases first and clips each case to them before resampling; the stored
    # HU, z-scored at load time (NormalizeIntensity3D), equal nnU-Net's DefaultPreprocessor
    # (CTNormalization with its fingerprint's statistics, then resampling).
    import nibabel as nib
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import \
        DatasetFingerprintExtractor

    from mmsam.datasets.converters import case_volumes
    from mmsam.datasets.converters.nifti_folder import convert_nifti_folder
    from mmsam.datasets.converters.nnunet_preprocessing import resample_volume
    from mmsam.datasets.transforms import NormalizeIntensity3D
    budget = 30000  # draws per training case (nnU-Net's 10e7 // N, made small for speed)
    monkeypatch.setattr(case_volumes, 'FOREGROUND_SAMPLE_BUDGET', 2 * budget)
    spacing, target = (5.0, 0.8, 0.8), (2.0, 0.6, 0.7)  # (z, y, x) mm: anisotropic source
    cases = {f'case{k}': ct_like_case((6, 22, 19), 20 + k) for k in range(3)}
    for folder in ('images', 'labels'):
        (tmp_path / 'src' / folder).mkdir(parents=True)
    for case, (image, label) in cases.items():  # NIfTI voxel arrays are (x, y, z)
        affine = np.diag([*spacing[::-1], 1.0])
        nib.save(nib.Nifti1Image(image.transpose(2, 1, 0), affine),
                 str(tmp_path / 'src' / 'images' / f'{case}.nii.gz'))
        nib.save(nib.Nifti1Image(label.transpose(2, 1, 0), affine),
                 str(tmp_path / 'src' / 'labels' / f'{case}.nii.gz'))
    meta = convert_nifti_folder(str(tmp_path / 'src'), str(tmp_path / 'out'), ['case2'],
                                intensity='hu', train_volumes=True, target_spacing=target)

    draws = np.concatenate([DatasetFingerprintExtractor.collect_foreground_intensities(
        label[None], image[None], num_samples=budget)[0][0]
        for image, label in (cases['case0'], cases['case1'])])
    low, high = np.percentile(draws, (0.5, 99.5))
    stats = dict(mean=float(np.mean(draws)), std=float(np.std(draws)),
                 percentile_00_5=float(low), percentile_99_5=float(high))
    assert meta['ct_foreground'] == stats
    normalise = NormalizeIntensity3D(mode='ct')
    for case, folder in (('case0', 'train_volumes'), ('case2', 'test_volumes')):
        image, label = cases[case]
        with np.load(tmp_path / 'out' / folder / f'{case}.npz') as stored:
            stored_image, stored_label = stored['image'], stored['label']
        ours = normalise.transform(dict(img=stored_image, intensity_properties=stats))['img']
        theirs, theirs_label = nnunet_preprocess(image, label, spacing, target, ct_stats=stats)
        assert ours.shape == theirs.shape == (15, 29, 22)
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(stored_label, theirs_label)
        # the former converters (resample the HU, clip at load time) differ at sharp edges
        former = normalise.transform(dict(img=resample_volume(image, label, spacing, target)[0],
                                          intensity_properties=stats))['img']
        assert np.abs(former - theirs).max() > 1e-2


def test_amos_folds_equal_nnunet_crossval_split():
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    from mmsam.datasets.converters.amos import kfold_splits
    rng = np.random.default_rng(0)
    for n in [5, 6, 7, 11, 24, 200, 240, *rng.integers(5, 300, 28)]:
        names = [f'amos_{k:04d}' for k in rng.choice(600, int(n), replace=False)]
        # nnU-Net splits its sorted case identifiers (nnUNetTrainer.do_split)
        theirs = generate_crossval_split(sorted(names), seed=12345, n_splits=5)
        ours = kfold_splits(list(reversed(names)))
        assert [dict(train=train, val=val) for train, val in ours] == theirs


def test_nnunet_dice_convention_equals_nnunet_compute_metrics():
    from nnunetv2.evaluation.evaluate_predictions import compute_metrics

    from mmsam.evaluation.functional.dice_hd95 import per_class_dice_hd95
    rng = np.random.default_rng(0)
    for trial in range(20):
        gt = rng.integers(0, 4, (5, 9, 8))
        pred = np.where(rng.random(gt.shape) < 0.3, rng.integers(0, 4, gt.shape), gt)
        if trial % 4 == 1:
            gt[gt == 3] = 0  # absent from the reference: a false positive scores 0
        if trial % 4 == 2:
            gt[gt == 2], pred[pred == 2] = 0, 0  # absent from both: NaN
        reader = type('Reader', (), dict(read_seg=lambda self, name: (
            dict(ref=gt, pred=pred)[name][None], {})))()
        theirs = compute_metrics('ref', 'pred', reader, [1, 2, 3])['metrics']
        ours = per_class_dice_hd95(pred, gt, 4, convention='nnunet', with_hd95=False)[:, 0]
        np.testing.assert_array_equal(ours, [theirs[c]['Dice'] for c in (1, 2, 3)])


# ----------------------------------------------------------------------------------------------
# Acceptance (issue 27): tools/test.py on a 3D config over an anisotropic (5 x 0.8 x 0.8 mm)
# volume gives nnU-Net's export of the same logits
# ----------------------------------------------------------------------------------------------

REPO = __import__('pathlib').Path(__file__).resolve().parents[1]
DCONV_3D = REPO / 'configs/samed/samed-dconv_vit-tiny_synthetic-abdomen-3d.py'
NATIVE_SPACING, MODEL_SPACING, NATIVE_SHAPE = (5.0, 0.8, 0.8), (2.0, 0.8, 0.8), (6, 40, 48)


def write_anisotropic_data_root(root):
    """A converted data root (Synapse classes, HU with CT statistics) holding one test case
    resampled from a 5 x 0.8 x 0.8 mm native grid to 2 x 0.8 x 0.8 mm, as converters store it."""
    import json

    from scipy.ndimage import gaussian_filter, zoom

    from mmsam.datasets.synapse_dataset import CLASSES
    rng = np.random.default_rng(3)
    native_image = gaussian_filter(rng.normal(size=NATIVE_SHAPE), (0.6, 3, 3)) * 4000 + 40
    native_label = np.digitize(native_image, np.quantile(native_image, np.linspace(
        0, 1, len(CLASSES) + 1)[1:-1])).astype(np.uint8)
    shape = tuple(round(n * s / t) for n, s, t in zip(NATIVE_SHAPE, NATIVE_SPACING,
                                                      MODEL_SPACING))
    factors = [t / n for t, n in zip(shape, NATIVE_SHAPE)]
    image = zoom(native_image, factors, order=1).astype(np.float32)
    label = zoom(native_label, factors, order=0).astype(np.uint8)
    (root / 'test_volumes').mkdir(parents=True)
    (root / 'splits').mkdir()
    (root / 'splits' / 'test.txt').write_text('aniso\n')
    stats = dict(mean=float(image.mean()), std=float(image.std()),
                 percentile_00_5=float(np.percentile(image, 0.5)),
                 percentile_99_5=float(np.percentile(image, 99.5)))
    (root / 'meta.json').write_text(json.dumps(dict(classes=list(CLASSES), intensity='hu',
                                                    ct_foreground=stats)))
    path = root / 'test_volumes' / 'aniso.npz'
    np.savez(path, image=image, label=label, spacing=np.array(MODEL_SPACING),
             native_label=native_label, native_spacing=np.array(NATIVE_SPACING),
             native_shape=np.array(NATIVE_SHAPE))
    return path


@pytest.mark.slow  # tools/test.py in a subprocess
def test_tools_test_on_an_anisotropic_volume_gives_nnunet_export_labels(tmp_path):
    import os
    import subprocess
    import sys

    from mmsam.apis import init_model
    from mmsam.apis.inference import prepare_volume
    from mmsam.datasets.synapse_dataset import CLASSES
    volume = write_anisotropic_data_root(tmp_path / 'data')
    config = tmp_path / 'anisotropic_3d.py'
    config.write_text(
        f"_base_ = [{str(DCONV_3D)!r}]\n"
        "test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n"
        f"    _delete_=True, type='SynapseVolumeDataset', data_root={str(volume.parents[1])!r},\n"
        "    split='test', volume_dir='test_volumes', test_mode=True,\n"
        "    pipeline={{_base_.test_pipeline}}))\n")
    torch.manual_seed(0)
    model = init_model(str(config))
    checkpoint = tmp_path / 'random.pth'
    torch.save(dict(meta=dict(dataset_meta=dict(classes=CLASSES)),
                    state_dict=model.state_dict()), checkpoint)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(REPO / 'tools/test.py'), str(config),
                           str(checkpoint), '--work-dir', str(tmp_path / 'work'), '--out',
                           str(tmp_path / 'out')], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    labels = np.load(tmp_path / 'out' / 'aniso.npz')['pred']

    # the same logits in this process: the test pipeline, the data preprocessor, the window
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = init_model(str(config), str(checkpoint))
        packed = prepare_volume(model, str(volume))
        data = model.data_preprocessor(dict(inputs=[packed['inputs']],
                                            data_samples=[packed['data_samples']]), False)
        cfg = model.test_cfg
        with torch.no_grad():
            logits = sliding_window_inference_3d(
                data['inputs'][0], model.window_scores, cfg['patch_size'], cfg['step_size'],
                cfg['sigma_scale'], tuple(cfg['mirror_axes']), cfg['window_batch'])
    finally:
        torch.set_num_threads(threads)
    assert logits.shape == (len(CLASSES), 15, 40, 48)
    theirs = nnunet_export_labels(logits, MODEL_SPACING, NATIVE_SHAPE, NATIVE_SPACING)
    assert labels.shape == NATIVE_SHAPE and len(np.unique(labels)) >= 2
    np.testing.assert_array_equal(labels, theirs)
    # the former trilinear resize of probabilities gives other labels on this grid
    former = resample_scores_to_native(logits.softmax(0), NATIVE_SHAPE, mode='trilinear')
    changed = (former.argmax(0).numpy() != theirs).mean()
    print(f'{len(np.unique(labels))} classes predicted; the trilinear resize changes '
          f'{changed:.1%} of the labels')
    assert changed > 0


@pytest.mark.slow  # two sliding windows of the tiny 3D model over a 15-slice volume (~20 s)
def test_scan_inference_resamples_to_the_training_spacing_as_nnunet(tmp_path):
    # nnU-Net's predict-from-files path on a 5 x 0.8 x 0.8 mm NIfTI with a model trained at
    # 2 x 0.8 x 0.8 mm: its preprocessor (CT normalisation, then resampling), the sliding
    # window, its export back to the scan's grid; mmsam's inference_scan gives the same labels.
    import json

    import nibabel as nib
    from mmseg.structures import SegDataSample

    from mmsam.apis import init_model
    from mmsam.apis.scan_inference import inference_scan
    from mmsam.datasets.io.scan import read_scan
    volume = write_anisotropic_data_root(tmp_path / 'data')
    meta_path = tmp_path / 'data' / 'meta.json'
    meta = json.loads(meta_path.read_text())
    meta['target_spacing'] = list(MODEL_SPACING)
    meta_path.write_text(json.dumps(meta))
    native = np.load(volume)
    scan = tmp_path / 'scan.nii.gz'
    hu = np.where(native['native_label'] > 0, 60.0, -700.0) + \
        np.random.default_rng(0).normal(0, 300, NATIVE_SHAPE)
    nib.save(nib.Nifti1Image(hu.astype(np.float32).transpose(2, 1, 0),
                             np.diag([0.8, 0.8, 5.0, 1.0])), str(scan))
    torch.manual_seed(0)
    model = init_model(str(DCONV_3D), cfg_options={
        'test_dataloader.dataset.data_root': str(tmp_path / 'data')})
    ours = inference_scan(model, str(scan))

    image, geometry = read_scan(str(scan))
    assert tuple(geometry.spacing) == pytest.approx(NATIVE_SPACING)
    data, _ = nnunet_preprocess(image, np.zeros(image.shape, np.uint8), NATIVE_SPACING,
                                MODEL_SPACING, ct_stats=meta['ct_foreground'])
    inputs = model.data_preprocessor(dict(inputs=[torch.from_numpy(data)[None]],
                                          data_samples=[SegDataSample()]), False)['inputs']
    cfg = model.test_cfg
    with torch.no_grad():
        logits = sliding_window_inference_3d(inputs[0], model.window_scores, cfg['patch_size'],
                                             cfg['step_size'], cfg['sigma_scale'],
                                             tuple(cfg['mirror_axes']), cfg['window_batch'])
    assert logits.shape[1:] == (15, 40, 48)
    theirs = nnunet_export_labels(logits, MODEL_SPACING, NATIVE_SHAPE, NATIVE_SPACING)
    assert ours.labels.shape == NATIVE_SHAPE and len(np.unique(theirs)) >= 2
    np.testing.assert_array_equal(ours.labels, theirs)
    # without a target spacing the model runs on the scan's own grid: other labels
    meta_path.write_text(json.dumps({**meta, 'target_spacing': None}))
    assert (inference_scan(model, str(scan)).labels != theirs).any()

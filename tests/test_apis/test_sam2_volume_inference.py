"""mmsam.apis.sam2_volume_inference: the key-slice prompt on the scan's grid and a resampled one."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmsam.apis.sam2_volume_inference import check_key_prompt, map_prompt, resize_mask


def test_check_key_prompt_names_the_scan():
    box, key = check_key_prompt([1, 2, 5, 6], 3, (4, 8, 10), 'scan.nii.gz')
    assert box.dtype == np.float32 and box.tolist() == [1, 2, 5, 6] and key == 3
    with pytest.raises(ValueError, match=r'scan\.nii\.gz: key slice 4 .* 0\.\.3'):
        check_key_prompt([1, 2, 5, 6], 4, (4, 8, 10), 'scan.nii.gz')
    with pytest.raises(ValueError, match=r'scan\.nii\.gz: box 1 2 10 6 must lie'):
        check_key_prompt([1, 2, 10, 6], 0, (4, 8, 10), 'scan.nii.gz')
    with pytest.raises(ValueError, match='4 numbers'):
        check_key_prompt([1, 2, 5], 0, (4, 8, 10), 'scan.nii.gz')


def test_map_prompt_follows_voxel_centres():
    # doubling every axis: voxel i's centre i + 0.5 lands on 2i + 1 - 0.5 = 2i + 0.5
    box, key = map_prompt(np.array([1, 2, 5, 6], np.float32), 3, (4, 8, 10), (8, 16, 20))
    assert key == 7  # centre 3.5 -> 7.0: slice 7 starts there (half-up rounding of 6.5)
    np.testing.assert_allclose(box, [2.5, 4.5, 10.5, 12.5])
    same_box, same_key = map_prompt(np.array([1, 2, 5, 6], np.float32), 3, (4, 8, 10),
                                    (4, 8, 10))
    assert same_key == 3 and same_box.tolist() == [1, 2, 5, 6]
    clipped, _ = map_prompt(np.array([0, 0, 9, 7], np.float32), 0, (4, 8, 10), (4, 4, 5))
    assert clipped.max() <= 4 and clipped.min() >= 0


def test_resize_mask_equals_trilinear_threshold():
    rng = np.random.default_rng(0)
    mask = (rng.random((3, 5, 7)) > 0.5).astype(np.uint8)
    out = resize_mask(mask, (6, 9, 11))
    reference = F.interpolate(torch.tensor(mask, dtype=torch.float32)[None, None], (6, 9, 11),
                              mode='trilinear', align_corners=False)[0, 0] >= 0.5
    np.testing.assert_array_equal(out, reference.numpy())
    assert out.dtype == np.uint8
    assert resize_mask(mask, mask.shape) is not mask
    np.testing.assert_array_equal(resize_mask(mask, mask.shape), mask)


TINY_CONFIG = 'configs/medsam2/medsam2_hiera-tiny_synthetic-abdomen-3d.py'


@pytest.fixture(scope='module')
def tiny_sam2_volume_model():
    """The tiny synthetic MedSAM2 config's model with seeded random weights (eval mode)."""
    import mmsam.models.segmentors.sam2_volume_segmentor  # noqa: F401 (registers)
    from mmsam.apis import init_model
    torch.manual_seed(0)
    return init_model(TINY_CONFIG, None, cfg_options={'model.test_cfg.largest_component': False})


def organ_scan(depth=5, size=96):
    """(D, H, W) float32 in [0, 1]: a bright ellipsoid on noise (slices smaller than the
    model's 128 input, so the test pipeline's grid and the scan's differ)."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:depth, :size, :size]
    inside = ((z - 2) / 3.0) ** 2 + ((y - 40) / 20.0) ** 2 + ((x - 50) / 25.0) ** 2 < 1
    return np.clip(0.2 + 0.6 * inside + 0.05 * rng.standard_normal(inside.shape), 0, 1
                   ).astype(np.float32)


def test_scan_equals_segment_volume_in_the_scan_geometry(tiny_sam2_volume_model, tmp_path):
    """A NIfTI scan through inference_scan_sam2 (reader, 'unit' preset, the config's test
    pipeline, test_step, native resampling) gives the mask the segmentor's own
    segment_volume gives on the array, on the scan's grid."""
    import nibabel as nib

    from mmsam.apis import inference_scan_sam2
    from mmsam.datasets.io.scan import read_scan
    model = tiny_sam2_volume_model
    volume = organ_scan(size=128)
    affine = np.diag([0.8, 0.7, 2.5, 1.0])
    path = tmp_path / 'organ.nii.gz'
    nib.save(nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine), path)
    stored, geometry = read_scan(str(path))
    box, key = [25, 20, 75, 60], 2
    prediction = inference_scan_sam2(model, str(path), box, key, intensity='unit')
    assert prediction.labels.shape == stored.shape and prediction.prompted == [key]
    assert prediction.geometry.spacing == geometry.spacing
    expected, _ = model.segment_volume(np.clip(stored, 0, 1), key, box)
    np.testing.assert_array_equal(prediction.labels, expected)
    assert set(np.unique(prediction.labels)) <= {0, 1}


def test_scan_with_other_slice_size_scales_the_box(tiny_sam2_volume_model):
    """96 x 96 slices: the box reaches the 128 x 128 network input scaled by 128 / 96."""
    from mmsam.apis import propagate_from_box
    model = tiny_sam2_volume_model
    volume = organ_scan(size=96)
    seen = {}
    predict = model.predict

    def spy(inputs, data_samples):
        seen['box'] = np.asarray(data_samples[0].metainfo['prompt_boxes'])
        seen['shape'] = tuple(inputs.shape)
        return predict(inputs, data_samples)

    model.predict = spy
    try:
        mask = propagate_from_box(model, volume, [24, 18, 72, 60], 2)
    finally:
        del model.predict
    assert mask.shape == volume.shape and mask.dtype == np.uint8
    np.testing.assert_allclose(seen['box'], [[32, 24, 96, 80]], rtol=1e-6)
    with pytest.raises(ValueError, match=r'the volume: key slice 9'):
        propagate_from_box(model, volume, [24, 18, 72, 60], 9)


def test_official_layout_file_loads_through_the_config(tiny_sam2_volume_model, tmp_path):
    """A file in SAM 2's official layout ({'model': {image_encoder.*, memory_attention.*, ...}})
    named once as backbone.checkpoint and tracker.checkpoint fills the whole model through
    init_weights (the route for MedSAM2_latest.pt / sam2.1_hiera_tiny.pt), and the segmentor
    then predicts as the model the file came from."""
    from mmsam.apis import init_model, propagate_from_box
    source = tiny_sam2_volume_model
    official = {f'image_encoder.{k}': v for k, v in source.backbone.state_dict().items()}
    official.update(source.tracker.state_dict())
    path = tmp_path / 'official_layout.pt'
    torch.save({'model': official}, path)
    torch.manual_seed(1)
    model = init_model(TINY_CONFIG, None, cfg_options={
        'model.backbone.checkpoint': str(path), 'model.tracker.checkpoint': str(path),
        'model.test_cfg.largest_component': False})
    model.init_weights()
    loaded, expected = model.state_dict(), source.state_dict()
    assert loaded.keys() == expected.keys()
    for key in expected:
        assert torch.equal(loaded[key], expected[key]), key
    volume = organ_scan(size=128)
    np.testing.assert_array_equal(propagate_from_box(model, volume, [25, 20, 75, 60], 2),
                                  propagate_from_box(source, volume, [25, 20, 75, 60], 2))

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

"""nnU-Net's sliding-window rules: step positions, Gaussian weights, exact reconstruction."""
import numpy as np
import pytest
import torch

from mmsam.models.utils.sliding_window_3d import (compute_window_steps, gaussian_importance_map,
                                                  mirrored_predict, sliding_window_inference_3d)


def test_steps_follow_nnunet_rule():
    # nnU-Net's compute_steps_for_sliding_window: ceil((110 - 64) / 32) + 1 = 3 windows,
    # spread evenly over 0..46.
    assert compute_window_steps((110,), (64,), 0.5) == [[0, 23, 46]]
    # 200: ceil(136 / 32) + 1 = 6 windows, stride 136 / 5 = 27.2 -> 0, 27, 54, 82, 109, 136
    assert compute_window_steps((64, 65, 200), (64, 64, 64), 0.5) == [
        [0], [0, 1], [0, 27, 54, 82, 109, 136]]
    assert compute_window_steps((10,), (4,), 1.0) == [[0, 3, 6]]
    with pytest.raises(ValueError, match='smaller than the window'):
        compute_window_steps((10,), (12,))
    with pytest.raises(ValueError, match='step_size'):
        compute_window_steps((10,), (4,), 0)


def test_gaussian_map_peaks_at_centre_and_has_no_zeros():
    weights = gaussian_importance_map((4, 16, 16))
    assert weights.max() == 1
    assert weights[2, 8, 8] == 1
    assert weights.min() > 0
    # sigma = patch / 8 along each axis: one sigma from the centre the weight is exp(-1/2)
    # relative to the peak (up to the discrete filter's truncation).
    assert weights[2, 8, 10] / weights[2, 8, 8] == pytest.approx(np.exp(-0.5), rel=2e-2)


def test_identity_model_reconstructs_with_padding_and_mirroring():
    torch.manual_seed(0)
    volume = torch.randn(2, 5, 23, 30)  # smaller than the window along depth: padded
    for mirror in [(), (0, 1, 2)]:
        out = sliding_window_inference_3d(volume, lambda x: x, (8, 16, 16), 0.5,
                                          mirror_axes=mirror, window_batch=3)
        assert out.shape == volume.shape
        torch.testing.assert_close(out, volume, atol=1e-6, rtol=0)


def test_blending_weights_windows_by_the_gaussian():
    # A model that outputs a constant per window index: the blend at a voxel is the
    # Gaussian-weighted mean of the windows covering it.
    volume = torch.zeros(1, 4, 4, 12)
    calls = []

    def predictor(x):
        calls.append(len(calls))
        return torch.full_like(x, float(len(calls) - 1))

    out = sliding_window_inference_3d(volume, predictor, (4, 4, 8), 0.5)
    assert len(calls) == 2  # x starts 0 and 4
    w = gaussian_importance_map((4, 4, 8))
    # voxel x=5 is covered by window 0 (at offset 5) and window 1 (offset 1)
    expected = (0 * w[1, 1, 5] + 1 * w[1, 1, 1]) / (w[1, 1, 5] + w[1, 1, 1])
    assert out[0, 1, 1, 5].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out[0, 1, 1, 0].item() == 0 and out[0, 1, 1, 11].item() == 1


def test_mirroring_averages_all_eight_flips():
    seen = []

    def predictor(x):
        seen.append(x.clone())
        return x * 0 + len(seen)

    x = torch.arange(8.).reshape(1, 1, 2, 2, 2)
    out = mirrored_predict(predictor, x, (0, 1, 2))
    assert len(seen) == 8
    assert len({tuple(s.flatten().tolist()) for s in seen}) == 8
    torch.testing.assert_close(out, torch.full_like(x, 4.5))

"""SAMDataPreProcessor interpolation='spline' and via_size: the official SAMed / H-SAM slice
resizing (test_single_volume's scipy zoom order 3, labels order 0), against scipy itself."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from scipy.ndimage import zoom

from mmsam.models.data_preprocessors import SAMDataPreProcessor


def _data(size=64, seed=0):
    """A [0, 1] slice as LoadNpzSlice gives it (x 255, 3 channels) and a label map."""
    rng = np.random.default_rng(seed)
    raw = rng.random((size, size)).astype(np.float32)
    label = torch.from_numpy(rng.integers(0, 9, (size, size)))
    sample = SegDataSample(gt_sem_seg=PixelData(data=label[None]))
    sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
    image = torch.from_numpy(raw * 255.0)[None].repeat(3, 1, 1)
    return raw, label, dict(inputs=[image], data_samples=[sample])


def _pre(size, **kwargs):
    # SAMed's input: mean 0, std 255 on LoadNpzSlice's 0-255, i.e. the [0, 1] slice
    return SAMDataPreProcessor(size=size, fit='resize', mean=[0.] * 3, std=[255.] * 3,
                               bgr_to_rgb=False, seg_pad_val=255, **kwargs)


def test_spline_resize_is_the_official_224_test_input():
    """H-SAM's 224 build: zoom(slice, 224 / 512, order=3) (slices of 64 -> 28 here)."""
    raw, _, data = _data()
    out = _pre((28, 28), interpolation='spline')(data, False)
    expected = zoom(raw, 28 / 64, order=3)
    np.testing.assert_allclose(out['inputs'][0, 0].numpy(), expected, rtol=0, atol=1e-6)
    assert tuple(out['data_samples'][0].img_shape) == (28, 28)
    bilinear = _pre((28, 28))(_data()[2], False)['inputs'][0, 0].numpy()
    assert np.abs(bilinear - expected).max() > 1e-2  # the default is another resize


def test_via_size_is_the_official_samed_round_trip_in_training_and_test():
    """SAMed's 512 -> 224 -> 512 (here 64 -> 28 -> 64): image order 3 twice; in training the
    label follows with order 0 twice (the official 224 training copy zoomed back up)."""
    raw, label, data = _data()
    pre = _pre((64, 64), interpolation='spline', via_size=(28, 28))
    expected = zoom(zoom(raw, 28 / 64, order=3), 64 / 28, order=3)
    test = pre(_data()[2], False)
    np.testing.assert_allclose(test['inputs'][0, 0].numpy(), expected, rtol=0, atol=1e-6)
    train = pre(data, True)
    np.testing.assert_allclose(train['inputs'][0, 0].numpy(), expected, rtol=0, atol=1e-6)
    expected_label = zoom(zoom(label.numpy(), 28 / 64, order=0), 64 / 28, order=0)
    assert np.array_equal(train['data_samples'][0].gt_sem_seg.data[0].numpy(), expected_label)
    assert tuple(train['data_samples'][0].img_shape) == (64, 64)


def test_interpolation_and_via_size_are_validated():
    with pytest.raises(ValueError, match="interpolation='cubic'"):
        _pre((8, 8), interpolation='cubic')
    with pytest.raises(ValueError, match="via_size.*fit='resize'"):
        SAMDataPreProcessor(size=(8, 8), fit='pad', via_size=(4, 4))

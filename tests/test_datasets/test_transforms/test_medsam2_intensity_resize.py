"""WindowIntensity3D (MedSAM2's CT window -> uint8 -> [0, 1]) and ResizeSlices (PIL-like)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmsam.datasets.transforms import ResizeSlices, WindowIntensity3D


def test_window_matches_medsam2_uint8_recipe():
    rng = np.random.default_rng(0)
    hu = rng.uniform(-1000, 1000, size=(3, 6, 7)).astype(np.float32)
    out = WindowIntensity3D()(dict(img=hu))['img']
    clipped = np.clip(hu, -150, 250)
    by_hand = np.uint8((clipped - clipped.min()) / (clipped.max() - clipped.min()) * 255.0)
    np.testing.assert_allclose(out, by_hand / 255.0, atol=1e-7)
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    window = WindowIntensity3D(window=(-100, 100), rescale='window', quantize=False)
    np.testing.assert_allclose(window(dict(img=np.array([-200., 0., 50., 300.])))['img'],
                               [0, 0.5, 0.75, 1])
    with pytest.raises(ValueError, match='low < high'):
        WindowIntensity3D(window=(10, -10))


@pytest.mark.parametrize('height,width', [(40, 30), (12, 20)])
def test_resize_slices_like_pil_and_scales_boxes(height, width):
    rng = np.random.default_rng(1)
    img = rng.random((2, height, width)).astype(np.float32)
    label = rng.integers(0, 3, size=(2, height, width)).astype(np.uint8)
    results = dict(img=img.copy(), gt_seg_map=label, seg_fields=['gt_seg_map'],
                   prompt_box=np.array([2, 4, 10, 8], np.float32),
                   prompt_boxes=np.array([[0, 0, width - 1, height - 1]], np.float32))
    out = ResizeSlices(16)(results)
    assert out['img'].shape == (2, 16, 16) and out['img_shape'] == (2, 16, 16)
    for z in range(2):  # PIL's bicubic (antialiased when shrinking), float mode
        pil = np.asarray(Image.fromarray(img[z], mode='F').resize((16, 16), Image.BICUBIC))
        np.testing.assert_allclose(out['img'][z], np.clip(pil, img.min(), img.max()),
                                   atol=2e-3)
    nearest = F.interpolate(torch.from_numpy(label)[None].float(), size=(16, 16),
                            mode='nearest-exact')[0].numpy()
    np.testing.assert_array_equal(out['gt_seg_map'], nearest)
    sx, sy = 16 / width, 16 / height
    np.testing.assert_allclose(out['prompt_box'], [2 * sx, 4 * sy, 10 * sx, 8 * sy], rtol=1e-6)
    np.testing.assert_allclose(out['prompt_boxes'][0], [0, 0, (width - 1) * sx,
                                                        (height - 1) * sy], rtol=1e-6)


def test_resize_slices_keeps_the_test_label_and_same_size():
    img = np.random.default_rng(2).random((3, 8, 8)).astype(np.float32)
    label = np.ones((3, 8, 8), np.uint8)
    out = ResizeSlices(4, resize_labels=False)(dict(img=img, gt_seg_map=label,
                                                    seg_fields=['gt_seg_map']))
    assert out['gt_seg_map'] is label
    same = ResizeSlices(8)(dict(img=img.copy(), prompt_box=np.array([1, 2, 3, 4.])))
    np.testing.assert_array_equal(same['img'], img)
    assert same['prompt_box'].tolist() == [1, 2, 3, 4]

"""SAMDataPreProcessor: one input geometry for training and test, worked by hand."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.models.data_preprocessors import SAMDataPreProcessor
from mmsam.registry import MODELS


def sample(shape, label=None):
    s = SegDataSample()
    s.set_metainfo(dict(img_shape=shape, ori_shape=shape))
    if label is not None:
        s.gt_sem_seg = PixelData(data=label[None])
    return s


def preprocessor(fit, size=(8, 8)):
    return SAMDataPreProcessor(size=size, fit=fit, mean=[0.] * 3, std=[1.] * 3, pad_val=-1,
                               seg_pad_val=255)


def test_pad_keeps_the_scale_in_training_and_at_test():
    image = torch.arange(3 * 4 * 6, dtype=torch.float32).reshape(3, 4, 6)
    label = torch.ones(4, 6, dtype=torch.uint8)
    pre = preprocessor('pad')
    for training in (True, False):
        out = pre(dict(inputs=[image.clone()], data_samples=[sample((4, 6), label)]), training)
        x, meta = out['inputs'][0], out['data_samples'][0]
        assert x.shape == (3, 8, 8)
        assert torch.equal(x[:, :4, :6], image)  # top-left, not resized
        assert (x[:, 4:] == -1).all() and (x[:, :, 6:] == -1).all()
        assert tuple(meta.img_shape) == (4, 6) and tuple(meta.ori_shape) == (4, 6)
        assert list(meta.padding_size) == [0, 2, 0, 4]  # left, right, top, bottom
    gt = out['data_samples'][0].gt_sem_seg.data  # at test the label is left alone
    assert gt.shape == (1, 4, 6)


def test_training_label_follows_the_padding():
    label = torch.ones(4, 6, dtype=torch.uint8)
    out = preprocessor('pad')(dict(inputs=[torch.zeros(3, 4, 6)],
                                   data_samples=[sample((4, 6), label)]), True)
    gt = out['data_samples'][0].gt_sem_seg.data[0]
    assert (gt[:4, :6] == 1).all() and (gt[4:] == 255).all() and (gt[:, 6:] == 255).all()


@pytest.mark.parametrize('fit,shape,expected', [
    ('pad', (4, 6), (4, 6)),            # smaller: kept
    ('pad', (16, 12), (8, 6)),          # larger: shrunk by 1/2 (longest side)
    ('longest_side', (4, 6), (5, 8)),   # 4 * 8/6 = 5.33 -> 5 (ResizeLongestSide's rounding)
    ('longest_side', (3, 6), (4, 8)),   # 3 * 8/6 = 4
    ('resize', (4, 6), (8, 8)),
    ('resize', (16, 12), (8, 8)),
])
def test_fitted_shapes(fit, shape, expected):
    assert preprocessor(fit).fitted_shape(shape) == expected


def test_resized_image_and_label_agree_and_crop_back():
    # a left/right split image and label, upscaled 2x: the split stays at the same place
    image = torch.zeros(3, 4, 4)
    image[:, :, 2:] = 10
    label = torch.zeros(4, 4, dtype=torch.uint8)
    label[:, 2:] = 1
    out = preprocessor('resize')(dict(inputs=[image], data_samples=[sample((4, 4), label)]),
                                 True)
    x, gt = out['inputs'][0], out['data_samples'][0].gt_sem_seg.data[0]
    assert torch.equal(gt[:, :4], torch.zeros(8, 4, dtype=torch.uint8))
    assert torch.equal(gt[:, 4:], torch.ones(8, 4, dtype=torch.uint8))
    assert (x[:, :, :3] == 0).all() and (x[:, :, 5:] == 10).all()
    assert tuple(out['data_samples'][0].img_shape) == (8, 8)


def test_a_test_batch_may_mix_sizes():
    pre = preprocessor('pad')
    out = pre(dict(inputs=[torch.zeros(3, 4, 6), torch.zeros(3, 8, 3)],
                   data_samples=[sample((4, 6)), sample((8, 3))]), False)
    assert out['inputs'].shape == (2, 3, 8, 8)
    assert [list(s.padding_size) for s in out['data_samples']] == [[0, 2, 0, 4], [0, 5, 0, 0]]


def test_options_that_would_split_train_and_test_are_refused():
    with pytest.raises(ValueError, match='test_cfg'):
        SAMDataPreProcessor(size=(8, 8), test_cfg=dict(size=(16, 16)))
    with pytest.raises(ValueError, match="fit='crop'"):
        SAMDataPreProcessor(size=(8, 8), fit='crop')


def test_mmseg_preprocessor_padding_only_in_training_is_refused_at_build():
    from conftest import tiny_box_prompt_segmentor_cfg
    cfg = tiny_box_prompt_segmentor_cfg()
    cfg['data_preprocessor'] = dict(type='SegDataPreProcessor', mean=[0.] * 3, std=[1.] * 3,
                                    size=(64, 64))
    with pytest.raises(ValueError, match="pads images to .64, 64. in training but not the "
                       "same way at test.*SAMDataPreProcessor"):
        MODELS.build(cfg)
    # repeating the size in test_cfg is mmseg's own way of agreeing: accepted
    cfg['data_preprocessor']['test_cfg'] = dict(size=(64, 64))
    MODELS.build(cfg)

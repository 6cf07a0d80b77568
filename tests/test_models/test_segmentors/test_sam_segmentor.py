import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmsam.registry import MODELS

DEMO = 'configs/samed/samed_vit-tiny_synthetic-abdomen.py'


def _batch(size=128, batch=2):
    inputs = [torch.randint(0, 255, (3, size, size), dtype=torch.uint8).float()
              for _ in range(batch)]
    samples = []
    for _ in range(batch):
        label = torch.randint(0, 9, (1, size, size))
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_demo_model_losses_and_prediction_follow_from_its_logits():
    """The demo SAMed model: ``loss_ce`` is 0.2 x torch's cross-entropy of the head's (1/2
    resolution) logits against the labels resized nearest, ``acc_seg`` the percentage of
    pixels whose argmax is the label; at test time the prediction at the original shape is
    the argmax of the logits."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(DEMO).model)
    model.init_weights()
    data = model.data_preprocessor(_batch(), training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.loss_dice', 'decode.acc_seg'}
    with torch.no_grad():
        logits = model.decode_head(model.extract_feat(data['inputs']))
    labels = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    small = F.interpolate(labels[:, None].float(), size=logits.shape[-2:],
                          mode='nearest')[:, 0].long()
    torch.testing.assert_close(losses['decode.loss_ce'], 0.2 * F.cross_entropy(logits, small))
    torch.testing.assert_close(losses['decode.acc_seg'][0],
                               (logits.argmax(1) == small).float().mean() * 100)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    model.eval()
    data = model.data_preprocessor(_batch(), training=False)
    with torch.no_grad():
        results = model(**data, mode='predict')
        logits = model.encode_decode(data['inputs'], data['data_samples'])
    assert results[0].seg_logits.data.shape == (9, 128, 128)
    torch.testing.assert_close(results[0].seg_logits.data,
                               F.interpolate(logits, size=(128, 128), mode='bilinear')[0])
    assert torch.equal(results[0].pred_sem_seg.data[0], results[0].seg_logits.data.argmax(0))


def test_zoom_nearest_equals_scipy_zoom_order_0():
    import numpy as np
    from scipy.ndimage import zoom

    from mmsam.models.segmentors.sam_segmentor import zoom_nearest
    labels = torch.randint(0, 9, (1, 56, 40))
    for shape in ((128, 128), (512, 100), (56, 97)):
        expected = zoom(labels[0].numpy(), (shape[0] / 56, shape[1] / 40), order=0)
        assert np.array_equal(zoom_nearest(labels, shape)[0].numpy(), expected)


def test_label_resize_nearest_takes_argmax_at_network_resolution():
    """At 128 -> 300 the two rules differ; 'nearest' equals argmax-then-scipy-zoom."""
    import numpy as np
    from scipy.ndimage import zoom
    torch.manual_seed(0)
    cfg = Config.fromfile(DEMO).model
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    data = model.data_preprocessor(_batch(), training=False)
    for sample in data['data_samples']:
        sample.set_metainfo(dict(ori_shape=(300, 300)))
    with torch.no_grad():
        logits = model.encode_decode(data['inputs'], data['data_samples'])
        default = model.predict(data['inputs'], data['data_samples'])[0].pred_sem_seg.data
        model.test_cfg = dict(label_resize='nearest')
        nearest = model.predict(data['inputs'], data['data_samples'])[0].pred_sem_seg.data
    expected = zoom(logits[0].argmax(0).numpy(), 300 / 128, order=0)
    assert np.array_equal(nearest[0].numpy(), expected)
    assert not torch.equal(default, nearest)
    model.test_cfg = dict(label_resize='bicubic')
    with pytest.raises(ValueError, match="label_resize='bicubic'"):
        model.predict(data['inputs'], data['data_samples'])


@pytest.mark.parametrize('test_cfg, message', [
    (dict(mode='slide', crop_size=(64, 64)), 'test_cfg.crop_size is read by nothing'),
    (dict(mode='slide'), "test_cfg.mode='slide' is not supported; it runs 'whole'"),
    (dict(label_resise='nearest'), "label_resise is read by nothing .did you mean "
                                   "'label_resize'"),
])
def test_test_cfg_keys_nothing_reads_are_refused(test_cfg, message):
    model_cfg = Config.fromfile(DEMO).model
    model_cfg.test_cfg = test_cfg
    with pytest.raises(ValueError, match=message):
        MODELS.build(model_cfg)

"""SAMed's / H-SAM's official label and test-time paths as mmsam options: scipy zoom(order=0)
loss labels in the paper-table configs, and test_single_volume's slice resizing (scipy zoom
order 3 in, order 0 back) through SAMDataPreProcessor and SAMSegmentor, against scipy."""
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from scipy.ndimage import zoom

from mmsam.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
DEMO = CONFIGS / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'


def test_paper_table_configs_use_the_official_low_res_labels():
    for name in ('samed_vit-b_synapse.py', 'samed_vit-b_synapse_10pct.py',
                 'samed_vit-b_synapse_224-round-trip.py'):
        assert Config.fromfile(CONFIGS / 'samed' / name).model.decode_head.loss_label_resize \
            == 'zoom', name


def test_round_trip_config_is_the_official_test_input():
    """samed_vit-b_synapse_224-round-trip.py: only the input geometry differs from the
    paper-table config, and a 512 slice becomes zoom(zoom(x, 224/512, 3), 512/224, 3)."""
    base = Config.fromfile(CONFIGS / 'samed' / 'samed_vit-b_synapse.py').model
    cfg = Config.fromfile(CONFIGS / 'samed' / 'samed_vit-b_synapse_224-round-trip.py').model
    pre_cfg = cfg.pop('data_preprocessor')
    base.pop('data_preprocessor')
    assert cfg.to_dict() == base.to_dict()
    pre = MODELS.build(pre_cfg)
    raw = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    image = torch.from_numpy(raw * 255.0)[None].repeat(3, 1, 1)  # LoadNpzSlice's image
    sample = SegDataSample()
    sample.set_metainfo(dict(img_shape=(512, 512), ori_shape=(512, 512)))
    out = pre(dict(inputs=[image], data_samples=[sample]), False)
    expected = zoom(zoom(raw, 224 / 512, order=3), 512 / 224, order=3)
    np.testing.assert_allclose(out['inputs'][0, 1].numpy(), expected, rtol=0, atol=2e-6)


def test_official_224_test_path_through_the_segmentor():
    """A 224-style model (the tiny demo at 128) tested on larger slices as test_single_volume
    does: zoom(slice, order=3) to the network size, argmax of the upsampled logits, then
    zoom(pred, order=0) back. Options: data_preprocessor fit='resize' +
    interpolation='spline', test_cfg label_resize='nearest'."""
    torch.manual_seed(0)
    cfg = Config.fromfile(DEMO).model
    cfg.data_preprocessor.update(fit='resize', interpolation='spline')
    cfg.test_cfg = dict(mode='whole', label_resize='nearest')
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    raw = np.random.default_rng(1).random((2, 300, 300)).astype(np.float32)
    samples = []
    for _ in raw:
        sample = SegDataSample(gt_sem_seg=PixelData(data=torch.zeros(1, 300, 300)))
        sample.set_metainfo(dict(img_shape=(300, 300), ori_shape=(300, 300)))
        samples.append(sample)
    data = model.data_preprocessor(dict(
        inputs=[torch.from_numpy(x * 255.0)[None].repeat(3, 1, 1) for x in raw],
        data_samples=samples), False)
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'])
        # the official path, written out with scipy: the network sees zoom(slice, order=3)
        net_in = torch.from_numpy(np.stack([zoom(x, 128 / 300, order=3) for x in raw]))
        logits = model.encode_decode(net_in[:, None].repeat(1, 3, 1, 1), data['data_samples'])
    for pred, logit in zip(preds, logits):
        expected = zoom(logit.argmax(0).numpy(), 300 / 128, order=0)
        assert np.array_equal(pred.pred_sem_seg.data[0].numpy(), expected)
        assert len(np.unique(expected)) > 1  # a map with borders, not one constant class

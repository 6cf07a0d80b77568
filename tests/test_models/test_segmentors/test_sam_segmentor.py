import torch
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


def test_demo_model_trains_and_predicts_at_original_shape():
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(DEMO).model)
    model.init_weights()
    data = model.data_preprocessor(_batch(), training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.loss_dice', 'decode.acc_seg'}
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    model.eval()
    data = model.data_preprocessor(_batch(), training=False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert results[0].pred_sem_seg.data.shape == (1, 128, 128)
    assert results[0].seg_logits.data.shape == (9, 128, 128)
    assert int(results[0].pred_sem_seg.data.max()) < 9

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmsam.apis import inference_model, inference_volume, init_model

DEMO = 'configs/samed/samed_vit-tiny_synthetic-abdomen.py'


def test_init_model_loads_a_runner_checkpoint_and_segments(tmp_path):
    torch.manual_seed(0)
    model = init_model(DEMO)
    # A checkpoint in the Runner's format, with message-hub-like numpy content.
    path = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(dataset_meta=dict(classes=('a', 'b')), seed=np.int64(3)),
                    state_dict=model.state_dict()), path)
    loaded = init_model(DEMO, str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.dataset_meta == dict(classes=('a', 'b'))
    rng = np.random.default_rng(0)
    volume = rng.random((3, 128, 128)).astype(np.float32)
    labels = inference_volume(loaded, volume, batch_size=2)
    assert labels.shape == (3, 128, 128) and labels.dtype == np.uint8
    single = inference_model(loaded, volume[1])
    np.testing.assert_array_equal(single.pred_sem_seg.data[0].numpy(), labels[1])
    assert Config.fromfile(DEMO).model.decode_head.num_classes == single.seg_logits.data.shape[0]


def test_init_model_refuses_a_checkpoint_that_does_not_fit(tmp_path):
    state = init_model(DEMO).state_dict()
    state.pop(next(k for k in state if k.startswith('decode_head.')))
    state['backbone.extra'] = torch.zeros(1)
    path = tmp_path / 'other.pth'
    torch.save(dict(meta=dict(), state_dict=state), path)
    with pytest.raises(RuntimeError, match=f'checkpoint {path} does not fit the model built '
                       f'from {DEMO}') as error:
        init_model(DEMO, str(path))
    assert 'missing keys in source state_dict: decode_head.' in str(error.value)
    assert 'unexpected key in source state_dict: backbone.extra' in str(error.value)

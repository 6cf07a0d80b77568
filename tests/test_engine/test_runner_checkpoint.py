"""mmsam.engine.checkpoint: mmengine's own checkpoints load weights-only; nothing else does."""
import io
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmsam.engine.checkpoint import allow_mmengine_checkpoints, load_checkpoint


def runner_like_checkpoint():
    """What mmengine's Runner.save_checkpoint writes: weights plus message hub and meta."""
    hub = MessageHub.get_instance('test_runner_checkpoint')
    for i, loss in enumerate([0.9, 0.5, 0.25]):
        hub.update_scalar('train/loss', loss)
        hub.update_scalar('train/lr', np.float64(0.01 / (i + 1)))
    hub.update_info('iter', 3)
    hub.update_info('seed', np.int64(7))
    model = torch.nn.Linear(3, 2)
    return model, dict(
        meta=dict(iter=3, epoch=0, seed=7, dataset_meta=dict(classes=('a', 'b'))),
        state_dict=OrderedDict(model.state_dict()),
        message_hub=hub.state_dict(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
        param_schedulers=[dict(base_values=[0.1], last_step=3)])


def save(obj, path):
    torch.save(obj, path)
    return str(path)


def test_runner_checkpoint_loads_with_allow_list_only(tmp_path):
    _, checkpoint = runner_like_checkpoint()
    path = save(checkpoint, tmp_path / 'iter_3.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)  # torch >= 2.6: weights-only by default
    with allow_mmengine_checkpoints():
        loaded = torch.load(path)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx((0.9 + 0.5 + 0.25) / 3)
    assert buffer.statistics('min') == 0.25
    assert loaded['message_hub']['runtime_info']['seed'] == 7
    # The allow-list is only active inside the context.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_load_checkpoint_into_model(tmp_path):
    model, checkpoint = runner_like_checkpoint()
    path = save(checkpoint, tmp_path / 'iter_3.pth')
    fresh = torch.nn.Linear(3, 2)
    load_checkpoint(fresh, path)
    assert torch.equal(fresh.weight, model.weight)


class _Reduce:
    """Pickles as ``func(*args)``, as an attacker's file would."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize('payload', [
    _Reduce(getattr, (HistoryBuffer, '__init__')),
    _Reduce(getattr, (HistoryBuffer, 'update')),
    _Reduce(getattr, (np.ndarray, 'tofile')),
    np.array([{'a': 1}], dtype=object),
], ids=['getattr-init', 'getattr-update', 'getattr-numpy', 'object-array'])
def test_anything_else_is_refused(tmp_path, payload):
    path = save({'state_dict': {}, 'payload': payload}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError):
        with allow_mmengine_checkpoints():
            torch.load(path)


def test_unknown_global_error_names_it(tmp_path):
    path = save({'payload': _Reduce(os.path.join, ('a', 'b'))}, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match=f'{path} contains `posixpath.join`'):
        with allow_mmengine_checkpoints(path):
            torch.load(path)


def test_numpy1_names_load(tmp_path):
    # Files written with numpy 1 name numpy.core.multiarray; the legacy (non-zip) format is a
    # plain pickle stream, so the module name can be rewritten in place.
    buf = io.BytesIO()
    torch.save({'x': np.arange(3.0), 's': np.float32(2.5)}, buf,
               _use_new_zipfile_serialization=False)
    data = buf.getvalue().replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'numpy.core.multiarray' in data
    with allow_mmengine_checkpoints():
        loaded = torch.load(io.BytesIO(data))
    np.testing.assert_array_equal(loaded['x'], np.arange(3.0))
    assert loaded['s'] == np.float32(2.5)

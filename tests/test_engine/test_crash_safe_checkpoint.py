"""Crash-safe checkpoints: atomic writes through mmengine's own save path, intact/damaged
detection, the error naming the newest intact checkpoint, and the resume fallback."""
import logging
import os

import pytest
import torch
from mmengine.hooks import CheckpointHook
from mmengine.runner.checkpoint import save_checkpoint as mmengine_save_checkpoint

from mmsam.engine.checkpoint import (CorruptCheckpointError, atomic_backend_args,
                                     checkpoint_problem, find_resume_checkpoint,
                                     load_checkpoint, newest_intact_checkpoint)
from mmsam.engine.hooks import AtomicCheckpointHook
from mmsam.engine.runner import MMSAMRunner
from mmsam.utils.io import atomic_open, remove_stale_temporaries


def state(value):
    model = torch.nn.Linear(2, 2)
    torch.nn.init.constant_(model.weight, value)
    return model, dict(meta=dict(iter=int(value)), state_dict=model.state_dict())


def write(path, value):
    """A checkpoint saved as the Runner saves it: mmengine's save_checkpoint, atomic backend."""
    mmengine_save_checkpoint(state(value)[1], str(path),
                             backend_args=atomic_backend_args(str(path)))
    return path


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError('disk full')  # fails half-way through torch.save


def test_atomic_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = write(tmp_path / 'iter_2.pth', 2.0)
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth']  # the temporary was renamed
    with pytest.raises(RuntimeError, match='disk full'):
        mmengine_save_checkpoint(dict(state_dict={}, bad=Unpicklable()), str(path),
                                 backend_args=atomic_backend_args(str(path)))
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth']
    model = torch.nn.Linear(2, 2)
    load_checkpoint(model, str(path))
    assert torch.all(model.weight == 2.0)
    # Remote paths and explicit backends are left to mmengine.
    assert atomic_backend_args('s3://bucket/iter_2.pth') is None
    assert atomic_backend_args(str(path), dict(backend='local')) == dict(backend='local')


def test_file_permissions_are_those_of_a_plain_open(tmp_path):
    path = write(tmp_path / 'iter_1.pth', 1.0)
    (tmp_path / 'plain').write_text('x')
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / 'plain').st_mode & 0o777


def damage(path, how):
    data = path.read_bytes()
    if how == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif how == 'empty':
        path.write_bytes(b'')
    elif how == 'garbage':
        path.write_bytes(b'not a checkpoint at all')
    elif how == 'bit-flip':  # inside a stored tensor: only the CRC check sees it
        data = bytearray(data)
        offset = data.index(b'data/0') + 200
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize('how, words', [
    ('truncated', 'truncated or damaged'), ('empty', 'empty'),
    ('garbage', 'neither a zip-format nor a legacy'), ('bit-flip', 'fails the CRC check')])
def test_damaged_checkpoints_are_told_apart(tmp_path, how, words):
    path = write(tmp_path / 'iter_4.pth', 4.0)
    assert checkpoint_problem(str(path)) is None
    damage(path, how)
    assert words in checkpoint_problem(str(path))


def test_loading_a_damaged_checkpoint_names_it_and_the_newest_intact_one(tmp_path):
    write(tmp_path / 'iter_2.pth', 2.0)
    write(tmp_path / 'iter_4.pth', 4.0)
    newest = write(tmp_path / 'iter_6.pth', 6.0)
    damage(newest, 'truncated')
    with pytest.raises(CorruptCheckpointError) as error:
        load_checkpoint(torch.nn.Linear(2, 2), str(newest))
    message = str(error.value)
    assert f'checkpoint {newest} cannot be loaded' in message
    assert f'the newest intact checkpoint there is {tmp_path / "iter_4.pth"}' in message
    assert '--resume' in message
    assert newest_intact_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    # Nothing intact left: the message says to train from the start.
    for name in ('iter_2.pth', 'iter_4.pth'):
        damage(tmp_path / name, 'empty')
    with pytest.raises(CorruptCheckpointError, match='there is no intact'):
        load_checkpoint(torch.nn.Linear(2, 2), str(newest))


class Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        if '--resume' in record.getMessage():  # not mmengine's FileClient deprecation notes
            self.records.append(record.getMessage())


@pytest.fixture
def warnings_log():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('test_crash_safe_checkpoint')
    handler = Messages()
    logger.addHandler(handler)
    yield logger, handler.records
    logger.removeHandler(handler)


def test_resume_takes_the_newest_intact_checkpoint(tmp_path, warnings_log):
    logger, records = warnings_log
    assert find_resume_checkpoint(str(tmp_path), logger) is None  # a fresh work dir
    for step in (2, 4, 6):
        write(tmp_path / f'iter_{step}.pth', float(step))
    record = tmp_path / 'last_checkpoint'
    record.write_text(str(tmp_path / 'iter_6.pth'))
    assert find_resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'iter_6.pth')
    assert not records

    damage(tmp_path / 'iter_6.pth', 'truncated')
    assert find_resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'iter_4.pth')
    (message,) = records
    assert f'skipping damaged checkpoint(s) {tmp_path / "iter_6.pth"}' in message
    assert f'resuming from {tmp_path / "iter_4.pth"}, the newest intact one' in message

    # Killed between writing iter_8.pth and last_checkpoint: the newer file is complete.
    write(tmp_path / 'iter_8.pth', 8.0)
    assert find_resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'iter_8.pth')
    # An empty last_checkpoint (mmengine's plain open() killed) falls back to the files.
    record.write_text('')
    assert find_resume_checkpoint(str(tmp_path), logger) == str(tmp_path / 'iter_8.pth')


def test_stale_temporaries_are_found_and_removed(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(tmp_path / 'iter_2.pth')) as f:
            f.write(b'half')
            raise KeyboardInterrupt  # cleaned up by atomic_open itself
    assert not os.listdir(tmp_path)
    # What a SIGKILL leaves (no cleanup runs): a hidden temporary next to the target.
    stale = tmp_path / '.iter_4.pth.tmp-abc123'
    stale.write_bytes(b'half')
    (tmp_path / 'keep.pth').write_bytes(b'x')
    assert remove_stale_temporaries(str(tmp_path), '*.pth') == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == ['keep.pth']


def test_runner_builds_the_atomic_hook_for_mmengines():
    assert MMSAMRunner._is_plain_checkpoint_hook('CheckpointHook')
    assert MMSAMRunner._is_plain_checkpoint_hook(CheckpointHook)
    assert not MMSAMRunner._is_plain_checkpoint_hook('AtomicCheckpointHook')
    assert not MMSAMRunner._is_plain_checkpoint_hook('LoggerHook')
    assert issubclass(AtomicCheckpointHook, CheckpointHook)

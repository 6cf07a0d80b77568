"""Starting a run: every missing prerequisite in one message before anything is created, no
folder left by a run that never started, and the config dump kept off the console."""
import logging
from pathlib import Path

import pytest
from conftest import load_script
from mmengine.config import Config
from mmengine.hooks import Hook

from mmsam.engine import PrerequisiteError, build_runner, check_prerequisites
from mmsam.engine.runner import FileOnlyFilter
from mmsam.registry import HOOKS

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs' / 'samed' / 'samed_vit-tiny_synthetic-abdomen.py'
SYNAPSE = REPO / 'configs' / 'samed' / 'samed_vit-b_synapse.py'


def load_tool(name):
    return load_script(f'tools/{name}.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp('synthetic_abdomen_start') / 'data'


def demo_cfg(data_root, work_dir, name, **options):
    """The demo shrunk to one 8-slice case per split and 2 iterations, no validation."""
    cfg = Config.fromfile(str(DEMO))
    shrink = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        shrink.update({f'{loader}.dataset.data_root': str(data_root),
                       f'{loader}.dataset.generator.num_train_cases': 1,
                       f'{loader}.dataset.generator.num_test_cases': 1,
                       f'{loader}.dataset.generator.depth': 8, f'{loader}.batch_size': 4,
                       f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False})
    cfg.merge_from_dict({**shrink, 'default_hooks.logger.interval': 1, **options})
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=1000)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=1000)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name  # runners built in one second would share a logger otherwise
    return cfg


def synapse_cfg(tmp_path):
    """The Synapse config, its data root and SAM weights pointed into (empty) ``tmp_path``."""
    cfg = Config.fromfile(str(SYNAPSE))
    weights = str(tmp_path / 'sam_vit_b.pth')
    options = {f'{loader}.dataset.data_root': str(tmp_path / 'synapse')
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({'model.backbone.checkpoint': weights,
                    'model.decode_head.prompt_encoder.checkpoint': weights,
                    'model.decode_head.mask_decoder.checkpoint': weights})
    cfg.merge_from_dict(options)
    return cfg, weights


def test_every_missing_prerequisite_in_one_message(tmp_path):
    cfg, weights = synapse_cfg(tmp_path)
    with pytest.raises(PrerequisiteError) as error:
        check_prerequisites(cfg, 'train')
    lines = str(error.value).splitlines()
    assert lines[0] == f'config {SYNAPSE}: 2 prerequisites are missing, nothing was started:'
    # The weight file once, with each key naming it; the data once, with each loader using it.
    assert lines[1] == (f'  - weight file {weights} (model.backbone.checkpoint, model.decode_'
                        'head.prompt_encoder.checkpoint, model.decode_head.mask_decoder.'
                        'checkpoint): no such file')
    assert lines[2].startswith('  - data (train_dataloader.dataset, val_dataloader.dataset): '
                               'SynapseDataset: ')
    assert str(tmp_path / 'synapse' / 'meta.json') in lines[2]
    assert 'segment-anything README' in lines[3]  # where SAM weights come from, once
    assert len(lines) == 4

    # Testing reads no SAM weights (the checkpoint holds them), but the checkpoint and test data.
    ckpt = str(tmp_path / 'epoch_1.pth')
    with pytest.raises(PrerequisiteError) as error:
        check_prerequisites(cfg, 'test', checkpoints=[('checkpoint', ckpt)])
    lines = str(error.value).splitlines()
    assert lines[1] == f'  - checkpoint {ckpt}: no such file'
    assert lines[2].startswith('  - data (test_dataloader.dataset): SynapseDataset: ')
    assert len(lines) == 3 and 'weight file' not in str(error.value)

    # load_from is a prerequisite of training; a generated (synthetic) dataset is not checked.
    demo = Config.fromfile(str(DEMO))
    demo.load_from = str(tmp_path / 'pretrained.pth')
    with pytest.raises(PrerequisiteError, match=r'1 prerequisite is missing') as error:
        check_prerequisites(demo, 'train')
    assert f'weight file {tmp_path / "pretrained.pth"} (load_from): no such file' in \
        str(error.value)
    demo.load_from = None
    check_prerequisites(demo, 'train')


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_create_nothing_when_prerequisites_are_missing(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('LOCAL_RANK', '0')
    weights = tmp_path / 'sam_vit_b.pth'
    work_dir = tmp_path / 'work'
    argv = [str(SYNAPSE)] + ([str(tmp_path / 'epoch_1.pth')] if tool == 'test' else []) + [
        '--work-dir', str(work_dir), '--cfg-options',
        *[f'{loader}.dataset.data_root={tmp_path / "synapse"}'
          for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')],
        f'model.backbone.checkpoint={weights}']
    with pytest.raises(SystemExit) as exit_:
        load_tool(tool).main(argv)
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert str(tmp_path / 'synapse' / 'meta.json') in message
    if tool == 'train':  # the encoder's weights moved, the decoder's at the default path
        assert f'error: config {SYNAPSE}: 3 prerequisites are missing' in message
        assert f'weight file {weights} (model.backbone.checkpoint): no such file' in message
        assert ('weight file checkpoints/sam_vit_b_01ec64.pth (model.decode_head.prompt_encoder'
                '.checkpoint, model.decode_head.mask_decoder.checkpoint): no such file') in message
    else:
        assert f'error: config {SYNAPSE}: 2 prerequisites are missing' in message
        assert f'checkpoint {tmp_path / "epoch_1.pth"}: no such file' in message
    assert not work_dir.exists()


def test_print_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(SystemExit):
        load_tool('train').main([str(SYNAPSE), '--work-dir', str(tmp_path / 'w'),
                                 '--print-config', '--cfg-options',
                                 f'train_dataloader.dataset.data_root={tmp_path}'])
    out = capsys.readouterr().out
    assert out.startswith('Config:\n') and "type='SAMedHead'" in out
    assert f"data_root='{tmp_path}'" in out  # the merged config, options applied


@HOOKS.register_module(force=True)
class FailAtIterationHook(Hook):
    """Raises before training (``at=0``) or after training iteration ``at``."""

    def __init__(self, at=0):
        self.at = at

    def before_train(self, runner):
        if self.at == 0:
            raise RuntimeError('failed before the first iteration')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise RuntimeError(f'failed after iteration {self.at}')


def test_a_run_that_never_started_leaves_no_folder(data_root, tmp_path):
    # Failing while the Runner is built (an argument the head does not take).
    work_dir = tmp_path / 'typo'
    with pytest.raises(TypeError):
        build_runner(demo_cfg(data_root, work_dir, 'typo', **{'model.decode_head.typo': 1}))
    assert not work_dir.exists()

    # Failing in train() before the first iteration, in a work dir that holds earlier files.
    work_dir = tmp_path / 'before'
    work_dir.mkdir()
    (work_dir / 'notes.txt').write_text('kept')
    runner = build_runner(demo_cfg(data_root, work_dir, 'before',
                                   custom_hooks=[dict(type='FailAtIterationHook', at=0)]))
    assert Path(runner.log_dir).is_dir()
    with pytest.raises(RuntimeError, match='before the first iteration'):
        runner.train()
    assert sorted(p.name for p in work_dir.iterdir()) == ['notes.txt']

    # A run that completed an iteration keeps its log.
    work_dir = tmp_path / 'after'
    runner = build_runner(demo_cfg(data_root, work_dir, 'after',
                                   custom_hooks=[dict(type='FailAtIterationHook', at=2)]))
    with pytest.raises(RuntimeError, match='after iteration 2'):
        runner.train()
    log = Path(runner.log_dir) / f'{runner.timestamp}.log'
    assert log.is_file() and 'Iter(train) [1/2]' in log.read_text()


def test_config_dump_goes_to_the_log_file_not_the_console(data_root, tmp_path, capsys):
    runner = build_runner(demo_cfg(data_root, tmp_path / 'work', 'console'))
    console = capsys.readouterr().out
    log = (Path(runner.log_dir) / f'{runner.timestamp}.log').read_text()
    for text in ('Config:\n', 'Hooks will be executed in the following order'):
        assert text in log
        assert text not in console
    assert 'System environment' in console  # the rest of the start is still shown
    dump = tmp_path / 'work' / DEMO.name
    assert f'Config: {dump} (in full in the log file {runner.log_dir}' in console
    assert dump.is_file()
    handlers = [h for h in runner.logger.handlers if type(h) is logging.StreamHandler]
    assert handlers and all(any(isinstance(f, FileOnlyFilter) for f in h.filters)
                            for h in handlers)


def test_test_tool_leaves_no_folder_when_the_checkpoint_does_not_fit(data_root, tmp_path,
                                                                     monkeypatch):
    import torch

    from mmsam.apis import init_model
    monkeypatch.setenv('LOCAL_RANK', '0')
    checkpoint = tmp_path / 'iter_2.pth'
    torch.save(dict(meta=dict(), state_dict=init_model(str(DEMO)).state_dict()), checkpoint)
    work_dir = tmp_path / 'work'
    options = [f'{loader}.dataset.{key}={value}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
               for key, value in (('data_root', data_root), ('generator.num_train_cases', 1),
                                  ('generator.num_test_cases', 1), ('generator.depth', 8))]
    with pytest.raises(RuntimeError, match=f'checkpoint {checkpoint} does not fit'):
        load_tool('test').main([str(DEMO), str(checkpoint), '--work-dir', str(work_dir),
                                '--cfg-options', *options, 'model.decode_head.num_classes=5'])
    assert not work_dir.exists()
